"""cgroupfs expectations for limits systemd resolves on the node (percentages) or spells as
words (idle, infinity), judged on canned node output."""

from __future__ import annotations

import pytest

from ringzero.kinds.slice.checks import MEMINFO, checks, percent_bytes
from ringzero.kinds.slice.expect import cgroup_files
from ringzero.spec import SliceSpec
from tests.unit.canned import verify

MEMINFO_2G = "MemTotal:        2014548 kB\nMemFree:          123456 kB\n"
PAGES_2G = 2014548 * 1024 // 4096  # 503637 pages of 4 KiB


def _verify(spec: SliceSpec, aspect: str, values: dict[str, str]) -> None:
    (check,) = [c for c in checks("vm1", spec) if c.aspect == aspect]
    verify(check, values)


def test_percentages_resolve_as_systemd_physical_memory_scale_does() -> None:
    assert percent_bytes(5000, MEMINFO_2G) == PAGES_2G * 5000 // 10000 * 4096
    assert percent_bytes(10000, MEMINFO_2G) == PAGES_2G * 4096  # 100%: all of physical memory
    assert percent_bytes(1250, MEMINFO_2G) == PAGES_2G * 1250 // 10000 * 4096
    assert percent_bytes(5000, "nothing here") is None


def test_idle_infinity_and_percentages_in_cgroupfs() -> None:
    spec = SliceSpec("web.slice", cpu_weight="idle", memory_high="1.5G", memory_max="50%", tasks_max="infinity")
    # cpu.idle=1 instead of a weight; pids.max 'max'; the percentage is checked against the node
    assert cgroup_files(spec) == {"cpu.idle": "1", "memory.high": "1610612736", "pids.max": "max"}
    assert {c.aspect for c in checks("vm1", spec)} >= {"cpu.idle", "memory.max", "pids.max", "memory.high"}


def test_memory_percentage_is_checked_against_the_nodes_memtotal() -> None:
    spec = SliceSpec("web.slice", memory_max="50%")
    right = str(PAGES_2G * 5000 // 10000 * 4096)
    _verify(spec, "memory.max", {MEMINFO: MEMINFO_2G, "file:/sys/fs/cgroup/web.slice/memory.max": right})
    with pytest.raises(AssertionError, match="50% of MemTotal"):
        _verify(spec, "memory.max", {MEMINFO: MEMINFO_2G, "file:/sys/fs/cgroup/web.slice/memory.max": "max"})
    with pytest.raises(AssertionError, match="no MemTotal"):
        _verify(spec, "memory.max", {"file:/sys/fs/cgroup/web.slice/memory.max": right})


def test_tasks_percentage_matches_what_systemd_resolved_and_is_not_max() -> None:
    spec = SliceSpec("web.slice", tasks_max="10%")
    shown = "shell:systemctl show -p TasksMax --value web.slice"
    _verify(spec, "pids.max", {shown: "3276", "file:/sys/fs/cgroup/web.slice/pids.max": "3276"})
    with pytest.raises(AssertionError, match="expected '3276'"):
        _verify(spec, "pids.max", {shown: "3276", "file:/sys/fs/cgroup/web.slice/pids.max": "max"})
    with pytest.raises(AssertionError, match="not a resolved number"):
        _verify(spec, "pids.max", {shown: "infinity", "file:/sys/fs/cgroup/web.slice/pids.max": "max"})
