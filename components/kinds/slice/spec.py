"""SliceSpec: a cgroup v2 slice, realised as a systemd .slice unit."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...spec._check import Ctx, permyriad
from ..service.spec import SERVICE_ALLOWED, SERVICE_RE

_SLICE_RE = re.compile(r"^[a-z0-9][a-z0-9_]*(?:-[a-z0-9][a-z0-9_]*)*\.slice$")
SLICE_ALLOWED = (
    "a slice unit name: lowercase words of a-z, 0-9, '_' joined by '-' (each '-' a nesting level) "
    "ending in '.slice', e.g. 'web.slice' or 'web-api.slice'"
)
PAGE_SIZE = 4096
MEMORY_FIELDS = ("memory_min", "memory_low", "memory_high", "memory_max")
# systemd 252 (config_parse_memory_limit) refuses 0 for these and ignores the line, so the
# slice silently gets no limit; MemoryMin=0 and MemoryLow=0 mean "no protection" and are fine.
_NONZERO = ("memory_high", "memory_max")
TASKS_MAX_LIMIT = 4194304  # the kernel's PID_MAX_LIMIT: a larger pids.max can never bind
CPU_WEIGHT_ALLOWED = "an integer from 1 to 10000, or 'idle' (cpu.idle=1: runs only when nothing else wants the CPU)"
TASKS_MAX_ALLOWED = (
    f"an integer from 1 to {TASKS_MAX_LIMIT}, 'infinity', or a percentage of the node's task limit "
    "from 0.01% to 100% with at most two decimals (e.g. '10%')"
)


@dataclass(frozen=True)
class SliceSpec:
    """Limits for one slice; None leaves the kernel default.

    Example::

        SliceSpec(name="web.slice", cpu_weight=200, cpu_quota_percent=50,
                  memory_high="384M", memory_max="512M", tasks_max=256,
                  services=("nginx.service",))
    """

    name: str
    description: str = ""
    cpu_weight: int | str | None = None
    cpu_quota_percent: int | None = None
    memory_min: int | str | None = None
    memory_low: int | str | None = None
    memory_high: int | str | None = None
    memory_max: int | str | None = None
    io_weight: int | None = None
    tasks_max: int | str | None = None
    services: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ctx = Ctx("CgroupSlice", str(self.name))
        ctx.pattern("name", self.name, _SLICE_RE, SLICE_ALLOWED)
        if self.name == "-.slice" or self.name in ("system.slice", "user.slice", "machine.slice", "init.scope"):
            raise ctx.fail("name", self.name, "a slice that systemd does not own (not system/user/machine.slice)")
        ctx.text("description", self.description)
        if self.cpu_weight is not None and self.cpu_weight != "idle":
            if isinstance(self.cpu_weight, str):
                raise ctx.fail("cpu_weight", self.cpu_weight, CPU_WEIGHT_ALLOWED)
            try:
                ctx.int_range("cpu_weight", self.cpu_weight, 1, 10000)
            except ValueError:
                raise ctx.fail("cpu_weight", self.cpu_weight, CPU_WEIGHT_ALLOWED) from None
        if self.cpu_quota_percent is not None:
            ctx.int_range("cpu_quota_percent", self.cpu_quota_percent, 1, 100 * 1024)
        if self.io_weight is not None:
            ctx.int_range("io_weight", self.io_weight, 1, 10000)
        if self.tasks_max is not None and self.tasks_max != "infinity":
            t = self.tasks_max
            ok = (isinstance(t, str) and (permyriad(t) or 0) > 0) or (
                isinstance(t, int) and not isinstance(t, bool) and 1 <= t <= TASKS_MAX_LIMIT)
            if not ok:
                raise ctx.fail("tasks_max", t, TASKS_MAX_ALLOWED)
        sizes: dict[str, int | str | None] = {}
        for f in MEMORY_FIELDS:
            v = getattr(self, f)
            if v is not None:
                sizes[f] = ctx.size(f, v, allow_max=f in _NONZERO, allow_zero=f not in _NONZERO, allow_percent=True)
        # The kernel requires min <= low <= high <= max for the limits to mean what they say.
        # Compare like with like: bytes with bytes, percentages with percentages ('max' is above
        # both); a byte count against a percentage depends on the node's memory, so it is skipped.
        for i, lo in enumerate(MEMORY_FIELDS):
            for hi in MEMORY_FIELDS[i + 1 :]:
                if lo not in sizes or hi not in sizes:
                    continue
                a, b = _comparable(sizes[lo]), _comparable(sizes[hi])
                if a is not None and b is not None and a[0] == b[0] and a[1] > b[1]:
                    raise ctx.fail(lo, getattr(self, lo), f"at most {hi} ({getattr(self, hi)!r})")
        for i, svc in enumerate(self.services):
            ctx.pattern(f"services[{i}]", svc, SERVICE_RE, SERVICE_ALLOWED)
        if not isinstance(self.services, tuple):
            raise ctx.fail("services", self.services, "a tuple of service unit names")

    def bytes(self, field: str) -> int | None:
        """A memory field in bytes; None for unset or 'max'. A percentage has no byte value
        before the node resolves it: ask `percent(field)` first."""
        v = getattr(self, field)
        if v is None:
            return None
        size = Ctx("CgroupSlice", self.name).size(field, v, allow_percent=True)
        if isinstance(size, str):
            raise ValueError(f"{self.name}: {field}={v!r} is a percentage of the node's memory")
        return size

    def percent(self, field: str) -> int | None:
        """A memory field or tasks_max declared as a percentage, in hundredths of a percent
        (systemd's permyriad): '12.5%' -> 1250; None when it is not a percentage."""
        v = getattr(self, field)
        return permyriad(v) if isinstance(v, str) and v.endswith("%") else None

    def is_set(self, field: str) -> bool:
        return getattr(self, field) is not None

    @property
    def cpu_idle(self) -> bool:
        return self.cpu_weight == "idle"

    @property
    def parent(self) -> str | None:
        """The parent slice systemd derives from the name: 'a-b.slice' lives in 'a.slice'."""
        stem = self.name[: -len(".slice")]
        return None if "-" not in stem else stem.rsplit("-", 1)[0] + ".slice"

    @property
    def cgroup_path(self) -> str:
        """Where the kernel shows it: /sys/fs/cgroup/a.slice/a-b.slice."""
        stem = self.name[: -len(".slice")].split("-")
        parts = ["-".join(stem[: i + 1]) + ".slice" for i in range(len(stem))]
        return "/sys/fs/cgroup/" + "/".join(parts)


def _comparable(size: int | str | None) -> tuple[str, int] | None:
    """('bytes', n) or ('percent', permyriad); None for 'max' (above everything)."""
    if size is None:
        return None
    if isinstance(size, str):
        return ("percent", permyriad(size) or 0)
    return ("bytes", size)
