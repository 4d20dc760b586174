"""Checks for CgroupSlice: the slice is active and the kernel's cgroup files hold its limits."""

from __future__ import annotations

from ..spec import SliceSpec
from .base import Check, expect_equal
from .probe import Probe

CPU_PERIOD_US = 100_000  # systemd's CPUQuotaPeriodSec default


def cgroup_files(spec: SliceSpec) -> dict[str, str]:
    """cgroup v2 interface file -> the value the kernel shows for the declared limits."""
    out: dict[str, str] = {}
    if spec.cpu_weight is not None:
        out["cpu.weight"] = str(spec.cpu_weight)
    if spec.cpu_quota_percent is not None:
        out["cpu.max"] = f"{spec.cpu_quota_percent * CPU_PERIOD_US // 100} {CPU_PERIOD_US}"
    for field, name in (("memory_min", "memory.min"), ("memory_low", "memory.low"),
                        ("memory_high", "memory.high"), ("memory_max", "memory.max")):
        if spec.is_set(field):
            b = spec.bytes(field)
            # The kernel rounds limits down to whole pages.
            out[name] = "max" if b is None else str(b - b % 4096)
    if spec.io_weight is not None:
        out["io.weight"] = f"default {spec.io_weight}"
    if spec.tasks_max is not None:
        out["pids.max"] = str(spec.tasks_max)
    return out


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
    prefix = "0::/" + spec.cgroup_path.removeprefix("/sys/fs/cgroup/") + "/"

    def verify(p: Probe) -> None:
        cg = p.value(f"proc:{service}:cgroup")
        if cg is None:
            raise AssertionError(f"{service} has no running main process to look at")
        if not any(line.startswith(prefix) for line in cg.splitlines()):
            raise AssertionError(f"{service}'s main process is in {cg.strip()!r}, not under {prefix[3:]!r}")

    return Check(node, f"slice:{spec.name}", f"placed:{service}", verify, (f"proc:{service}:cgroup",),
                 f"{service} runs in {spec.name}")


def checks(node: str, spec: SliceSpec) -> list[Check]:
    out = [_active(node, spec)]
    out += [_limit(node, spec, name, value) for name, value in cgroup_files(spec).items()]
    out += [_placed(node, spec, svc) for svc in spec.services]
    return out
