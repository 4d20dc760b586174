"""The slice table: each SliceSpec field, once, in every form a node shows it.

One row per field: the systemd directive the unit file carries, the property `systemctl show`
prints once the unit is loaded (what the node module compares to find drift) and the cgroup v2
file the kernel then holds (what the checks read). `slice_directives`, `shown_properties` and
`cgroup_files` are derived from it; the arithmetic (CPU quota, page rounding) lives here only.
Adding a field is adding a row (see README, "Adding a field to a policy kind").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .spec import PAGE_SIZE, SliceSpec

CPU_PERIOD_US = 100_000  # systemd's CPUQuotaPeriodSec default: cpu.max's period


@dataclass(frozen=True)
class Row:
    """One SliceSpec field on the node.

    `directive(spec)` is the unit's value; `shown(value)` what `systemctl show -p <prop>`
    prints for that directive value (None: systemd resolves it against the node, e.g. a
    percentage); `cgroup(spec)` the (file, value) the kernel shows (None: node-dependent, then
    `resolved` names the check that computes it from the node's own figures: "memory" or "tasks").
    """

    field: str
    directive: str
    prop: str
    files: tuple[str, ...]  # the cgroup files this field can set
    value: Callable[[SliceSpec], str]
    shown: Callable[[str], str | None]
    cgroup: Callable[[SliceSpec], tuple[str, str] | None]
    resolved: str = ""  # "memory" | "tasks": a percentage the checks resolve on the node
    first_line: bool = False  # the file lists per-device values after the default


def quota_usec_per_sec(percent: int) -> int:
    """CPUQuota=<percent>% as CPU time per second of wall time, in microseconds."""
    return percent * 1_000_000 // 100


def timespan(usec: int) -> str:
    """A duration the way `systemctl show` prints it ("500ms", "1s", "1.500000s")."""
    if usec % 1_000_000 == 0:
        return f"{usec // 1_000_000}s"
    if usec < 1_000_000 and usec % 1000 == 0:
        return f"{usec // 1000}ms"
    return f"{usec / 1_000_000:.6f}s"


def page_floor(n: int) -> int:
    """The kernel keeps memory limits in whole pages, rounding down."""
    return n - n % PAGE_SIZE


def _as_declared(value: str) -> str | None:
    # systemd 252 resolves a percentage when it loads the unit (MemoryMax=50% becomes half the
    # node's physical memory, TasksMax=10% a tenth of its task limit): that number depends on
    # the node, so it is not expected here. "idle" and "infinity" are printed as declared.
    return None if value.endswith("%") else value


def _memory_value(field: str) -> Callable[[SliceSpec], str]:
    def value(spec: SliceSpec) -> str:
        if spec.percent(field) is not None:
            return str(getattr(spec, field))  # systemd resolves it against physical memory itself
        b = spec.bytes(field)
        return "infinity" if b is None else str(b)
    return value


def _memory_file(field: str, name: str) -> Callable[[SliceSpec], tuple[str, str] | None]:
    def cgroup(spec: SliceSpec) -> tuple[str, str] | None:
        if spec.percent(field) is not None:
            return None
        b = spec.bytes(field)
        return name, "max" if b is None else str(page_floor(b))
    return cgroup


def _cpu_weight_file(spec: SliceSpec) -> tuple[str, str]:
    # systemd 252 writes cpu.idle=1 for CPUWeight=idle and leaves cpu.weight alone (kernel >= 5.15).
    return ("cpu.idle", "1") if spec.cpu_idle else ("cpu.weight", str(spec.cpu_weight))


def _cpu_max(spec: SliceSpec) -> tuple[str, str]:
    assert spec.cpu_quota_percent is not None
    return "cpu.max", f"{quota_usec_per_sec(spec.cpu_quota_percent) * CPU_PERIOD_US // 1_000_000} {CPU_PERIOD_US}"


def _pids_max(spec: SliceSpec) -> tuple[str, str] | None:
    if spec.percent("tasks_max") is not None:
        return None
    return "pids.max", "max" if spec.tasks_max == "infinity" else str(spec.tasks_max)


ROWS: tuple[Row, ...] = (
    Row("cpu_weight", "CPUWeight", "CPUWeight", ("cpu.weight", "cpu.idle"),
        lambda s: str(s.cpu_weight), _as_declared, _cpu_weight_file),
    Row("cpu_quota_percent", "CPUQuota", "CPUQuotaPerSecUSec", ("cpu.max",),
        lambda s: f"{s.cpu_quota_percent}%",
        lambda v: timespan(quota_usec_per_sec(int(v.rstrip("%")))), _cpu_max),
    *(Row(f, key, key, (name,), _memory_value(f), _as_declared, _memory_file(f, name), resolved="memory")
      for f, key, name in (("memory_min", "MemoryMin", "memory.min"), ("memory_low", "MemoryLow", "memory.low"),
                           ("memory_high", "MemoryHigh", "memory.high"), ("memory_max", "MemoryMax", "memory.max"))),
    Row("io_weight", "IOWeight", "IOWeight", ("io.weight",),
        lambda s: str(s.io_weight), _as_declared, lambda s: ("io.weight", f"default {s.io_weight}"),
        first_line=True),
    Row("tasks_max", "TasksMax", "TasksMax", ("pids.max",),
        lambda s: str(s.tasks_max), _as_declared, _pids_max, resolved="tasks"),
)


def declared(spec: SliceSpec) -> list[Row]:
    """The rows of the fields `spec` sets, in table order."""
    return [r for r in ROWS if spec.is_set(r.field)]


def slice_directives(spec: SliceSpec) -> list[tuple[str, str]]:
    """The [Slice] section: systemd directive -> value, in a stable order."""
    return [(r.directive, r.value(spec)) for r in declared(spec)]


def shown_properties(directives: dict[str, str]) -> dict[str, str]:
    """The slice's directives as `systemctl show` reports them once in effect: the node module
    compares these to find drift (a `systemctl set-property` override, say). Values systemd
    resolves against the node (percentages) are left out: the checks compute them."""
    rows = {r.directive: r for r in ROWS}
    out: dict[str, str] = {}
    for key, value in directives.items():
        shown = rows[key].shown(value)
        if shown is not None:
            out[rows[key].prop] = shown
    return out


def cgroup_files(spec: SliceSpec) -> dict[str, str]:
    """cgroup v2 interface file -> the value the kernel shows for the declared limits.

    Limits declared as percentages depend on the node and are not here: the checks resolve
    them (rows with `resolved`)."""
    return dict(fv for r in declared(spec) if (fv := r.cgroup(spec)) is not None)
