"""Checks for CgroupSlice: the slice is active, the kernel's cgroup files hold its limits (one
check per row of the slice table, `expect.ROWS`) and its services run in it."""

from __future__ import annotations

from ...checks.base import Check, expect_equal
from ...checks.probe import Probe
from ...facts import meminfo, unified_cgroup
from .expect import declared
from .spec import PAGE_SIZE, SliceSpec

MEMINFO = "file:/proc/meminfo"


def percent_bytes(permyriad: int, meminfo_text: str) -> int | None:
    """What systemd 252 resolves a memory percentage to on a node (physical_memory_scale():
    whole pages of MemTotal times permyriad / 10000, in bytes); None if MemTotal is unreadable."""
    total = meminfo(meminfo_text).get("MemTotal")
    if total is None:
        return None
    pages = total // PAGE_SIZE
    return pages * permyriad // 10000 * PAGE_SIZE


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


def _limit(node: str, spec: SliceSpec, name: str, expected: str, first_line: bool) -> Check:
    path = f"{spec.cgroup_path}/{name}"

    def verify(p: Probe) -> None:
        actual = p.file(path)
        if first_line and actual:
            actual = actual.splitlines()[0]  # e.g. io.weight: "default N", then per-device lines
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
    """The slice active; a check per declared row of the table (its cgroup file, or for a
    percentage the value the node resolves it to); each of its services placed in it."""
    out = [_active(node, spec)]
    resolved: list[Check] = []
    for row in declared(spec):
        shown = row.cgroup(spec)
        if shown is not None:
            out.append(_limit(node, spec, *shown, row.first_line))
        elif row.resolved == "memory":
            resolved.append(_memory_percent(node, spec, row.field, row.files[0]))
        elif row.resolved == "tasks":
            resolved.append(_tasks_percent(node, spec))
    return out + resolved + [_placed(node, spec, svc) for svc in spec.services]
