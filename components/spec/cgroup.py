"""SliceSpec: a cgroup v2 slice, realised as a systemd .slice unit."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._check import Ctx

_SLICE_RE = re.compile(r"^[a-z0-9][a-z0-9_]*(?:-[a-z0-9][a-z0-9_]*)*\.slice$")
SLICE_ALLOWED = (
    "a slice unit name: lowercase words of a-z, 0-9, '_' joined by '-' (each '-' a nesting level) "
    "ending in '.slice', e.g. 'web.slice' or 'web-api.slice'"
)
SERVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@_.:-]{0,240}\.service$")
SERVICE_ALLOWED = "a systemd service unit name of letters, digits and @ _ . : - ending in '.service'"
PAGE_SIZE = 4096


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
    cpu_weight: int | None = None
    cpu_quota_percent: int | None = None
    memory_min: int | str | None = None
    memory_low: int | str | None = None
    memory_high: int | str | None = None
    memory_max: int | str | None = None
    io_weight: int | None = None
    tasks_max: int | None = None
    services: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ctx = Ctx("CgroupSlice", str(self.name))
        ctx.pattern("name", self.name, _SLICE_RE, SLICE_ALLOWED)
        if self.name == "-.slice" or self.name in ("system.slice", "user.slice", "machine.slice", "init.scope"):
            raise ctx.fail("name", self.name, "a slice that systemd does not own (not system/user/machine.slice)")
        ctx.text("description", self.description)
        if self.cpu_weight is not None:
            ctx.int_range("cpu_weight", self.cpu_weight, 1, 10000)
        if self.cpu_quota_percent is not None:
            ctx.int_range("cpu_quota_percent", self.cpu_quota_percent, 1, 100 * 1024)
        if self.io_weight is not None:
            ctx.int_range("io_weight", self.io_weight, 1, 10000)
        if self.tasks_max is not None:
            ctx.int_range("tasks_max", self.tasks_max, 1, 4194304)
        sizes = {}
        for f in ("memory_min", "memory_low", "memory_high", "memory_max"):
            v = getattr(self, f)
            sizes[f] = None if v is None else ctx.size(f, v, allow_max=f in ("memory_high", "memory_max"))
        # The kernel requires min <= low <= high <= max for the limits to mean what they say.
        order = ["memory_min", "memory_low", "memory_high", "memory_max"]
        for i, lo in enumerate(order):
            for hi in order[i + 1 :]:
                a, b = sizes[lo], sizes[hi]
                if a is not None and b is not None and a > b:
                    raise ctx.fail(lo, getattr(self, lo), f"at most {hi} ({getattr(self, hi)!r})")
        for i, svc in enumerate(self.services):
            ctx.pattern(f"services[{i}]", svc, SERVICE_RE, SERVICE_ALLOWED)
        if not isinstance(self.services, tuple):
            raise ctx.fail("services", self.services, "a tuple of service unit names")

    def bytes(self, field: str) -> int | None:
        """A memory field in bytes; None for unset or 'max'."""
        v = getattr(self, field)
        return None if v is None else Ctx("CgroupSlice", self.name).size(field, v)

    def is_set(self, field: str) -> bool:
        return getattr(self, field) is not None

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
