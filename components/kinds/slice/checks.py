"""Checks for CgroupSlice: the slice is active and the kernel's cgroup files hold its limits."""

from __future__ import annotations

from ..facts import meminfo, unified_cgroup
from ..spec import SliceSpec
from .base import Check, expect_equal
from .probe import Probe

CPU_PERIOD_US = 100_000  # systemd's CPUQuotaPeriodSec default
PAGE = 4096
MEMINFO = "file:/proc/meminfo"
_MEMORY_FILES = (("memory_min", "memory.min"), ("memory_low", "memory.low"),
                 ("memory_high", "memory.high"), ("memory_max", "memory.max"))


def cgroup_files(spec: SliceSpec) -> dict[str, str]:
    """cgroup v2 interface file -> the value the kernel shows for the declared limits.

    Limits declared as percentages depend on the node and are not here: see
    `percent_bytes` (memory) and `_tasks_percent` (pids.max)."""
    out: dict[str, str] = {}
    if spec.cpu_idle:
        # systemd 252 writes cpu.idle=1 for CPUWeight=idle and leaves cpu.weight alone (kernel >= 5.15).
        out["cpu.idle"] = "1"
    elif spec.cpu_weight is not None:
        out["cpu.weight"] = str(spec.cpu_weight)
    if spec.cpu_quota_percent is not None:
        out["cpu.max"] = f"{spec.cpu_quota_percent * CPU_PERIOD_US // 100} {CPU_PERIOD_US}"
    for field, name in _MEMORY_FILES:
        if spec.is_set(field) and spec.percent(field) is None:
            b = spec.bytes(field)
            # The kernel rounds limits down to whole pages.
            out[name] = "max" if b is None else str(b - b % PAGE)
    if spec.io_weight is not None:
        out["io.weight"] = f"default {spec.io_weight}"
    if spec.tasks_max is not None and spec.percent("tasks_max") is None:
        out["pids.max"] = "max" if spec.tasks_max == "infinity" else str(spec.tasks_max)
    return out


def percent_bytes(permyriad: int, meminfo_text: str) -> int | None:
    """What systemd 252 resolves a memory percentage to on a node (physical_memory_scale():
    whole pages of MemTotal times permyriad / 10000, in bytes); None if MemTotal is unreadable."""
    total = meminfo(meminfo_text).get("MemTotal")
    if total is None:
        return None
    pages = total // PAGE
    return pages * permyriad // 10000 * PAGE


def _memory_percent(node: str, spec: SliceSpec, field: str, name: str) -> Check:
    """A percentage limit: memory.<x> holds that share of the node's own MemTotal."""
    path = f"{spec.cgroup_path}/{name}"
    declared = str(getattr(spec, field))
    permyriad = spec.percent(field) or 0

    def verify(p: Probe) -> None:
        expected = percent_bytes(permyriad, p.value(MEMINFO) or "")
        if expected is None:
            raise AssertionError(f"{MEMINFO}: no MemTotal line to resolve {field}={declared!r} against")
        expect_equal(f"{path} ({declared} of MemTotal)", str(expected), p.file(path))

    return Check(node, f"slice:{spec.name}", name, verify, (f"file:{path}", MEMINFO),
                 f"{path} is {declared} of the node's memory")


def _tasks_percent(node: str, spec: SliceSpec) -> Check:
    """TasksMax as a percentage: systemd scales the node's task limit (the smaller of
    kernel.threads-max, kernel.pid_max - 1 and 4194303 in 252); pids.max must be a number, not
    'max', and equal to what `systemctl show -p TasksMax` resolved it to."""
    path = f"{spec.cgroup_path}/pids.max"
    shown = f"shell:systemctl show -p TasksMax --value {spec.name}"

    def verify(p: Probe) -> None:
        resolved = (p.value(shown) or "").strip()
        if not resolved.isdigit():
            raise AssertionError(f"systemctl show -p TasksMax {spec.name}: {resolved!r}, not a resolved number")
        expect_equal(f"{path} ({spec.tasks_max} of the node's task limit)", resolved, p.file(path))

    return Check(node, f"slice:{spec.name}", "pids.max", verify, (f"file:{path}", shown),
                 f"{path} is {spec.tasks_max} of the node's task limit")


def _active(node: str, spec: SliceSpec) -> Check:
    def verify(p: Probe) -> None:
        expect_equal(f"{spec.name} ActiveState", "active", p.unit(spec.name).get("ActiveState"))

    return Check(node, f"slice:{spec.name}", "active", verify, (f"unit:{spec.name}",), "the slice unit is active")


def _limit(node: str, spec: SliceSpec, name: str, expected: str) -> Check:
    path = f"{spec.cgroup_path}/{name}"

    def verify(p: Probe) -> None:
        actual = p.file(path)
        if name == "io.weight" and actual is not None:
            actual = actual.splitlines()[0] if actual else actual  # "default N" then per-device lines
        expect_equal(path, expected, actual)

    return Check(node, f"slice:{spec.name}", name, verify, (f"file:{path}",), f"{path} is {expected}")


def _placed(node: str, spec: SliceSpec, service: str) -> Check:
    prefix = "/" + spec.cgroup_path.removeprefix("/sys/fs/cgroup/") + "/"

    def verify(p: Probe) -> None:
        cg = p.value(f"proc:{service}:cgroup")
        if cg is None:
            raise AssertionError(f"{service} has no running main process to look at")
        path = unified_cgroup(cg)
        if path is None or not path.startswith(prefix):
            raise AssertionError(f"{service}'s main process is in {cg.strip()!r}, not under {prefix!r}")

    return Check(node, f"slice:{spec.name}", f"placed:{service}", verify, (f"proc:{service}:cgroup",),
                 f"{service} runs in {spec.name}")


def checks(node: str, spec: SliceSpec) -> list[Check]:
    out = [_active(node, spec)]
    out += [_limit(node, spec, name, value) for name, value in cgroup_files(spec).items()]
    out += [_memory_percent(node, spec, f, name) for f, name in _MEMORY_FILES if spec.percent(f) is not None]
    if spec.percent("tasks_max") is not None:
        out.append(_tasks_percent(node, spec))
    out += [_placed(node, spec, svc) for svc in spec.services]
    return out
