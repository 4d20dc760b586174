"""Compliance checks on canned node output: parsers, ids, and that each check can fail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from ringzero.checks import Check, Probe, expectations
from ringzero.checks.apparmor import loaded_profiles
from ringzero.checks.bpf import attachments
from ringzero.checks.cgroup import cgroup_files
from ringzero.checks.hosts import parse_endpoints
from ringzero.checks.probe import parse, properties
from ringzero.checks.seccomp import seccomp_mode
from ringzero.compliance import junit_counts
from ringzero.spec import SliceSpec

from tests.fixtures import local_topology

CHECKS = expectations(local_topology())


@dataclass
class Result:
    rc: int
    stdout: str = ""
    stderr: str = ""


class DeadHost:
    """A node where nothing ringzero declares exists: every read is missing, every command fails."""

    def run(self, command: str, *args: str) -> Result:
        if command.startswith("sh -c"):
            keys = args[1:]
            return Result(0, "".join(f"\x1e{k}\n\x1emissing\n" for k in keys))
        return Result(1, "", "No such file or directory")


def test_ids_are_readable_and_unique() -> None:
    ids = [c.id for c in CHECKS]
    assert len(ids) == len(set(ids)) >= 30
    assert "vm1::slice:web.slice::memory.max" in ids
    assert "vm1::seccomp:no-mkdir::ringzero-demo-web.service:mkdir" in ids
    assert "vm2::host:kvm::nested-virt" in ids


@pytest.mark.parametrize("check", CHECKS, ids=[c.id for c in CHECKS])
def test_each_check_fails_where_its_policy_is_absent(check: Check, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ringzero.checks.bpf.EVENT_TIMEOUT_S", 0)
    monkeypatch.setattr("ringzero.checks.bpf.ATTACH_GRACE_S", 0)
    monkeypatch.setattr("time.sleep", lambda _s: None)
    probe = Probe(DeadHost(), check.node)
    probe.fetch(check.reads)
    with pytest.raises(AssertionError):
        check.verify(probe)


def test_probe_output_parses_values_and_missing_markers() -> None:
    out = "\x1efile:/a\nx\ny\n\n\x1efile:/b\n\x1emissing\n\x1eunit:web.slice\nActiveState=active\n\n"
    assert parse(out) == {"file:/a": "x\ny\n", "file:/b": None, "unit:web.slice": "ActiveState=active\n"}
    assert properties("ActiveState=active\nMainPID=12\n") == {"ActiveState": "active", "MainPID": "12"}


def test_cgroup_values_as_the_kernel_shows_them() -> None:
    spec = SliceSpec("web.slice", cpu_weight=200, cpu_quota_percent=50, memory_high="384M", memory_max=1000000001,
                     io_weight=50, tasks_max=256)
    assert cgroup_files(spec) == {
        "cpu.weight": "200", "cpu.max": "50000 100000", "memory.high": "402653184",
        "memory.max": "999997440",  # rounded down to whole pages
        "io.weight": "default 50", "pids.max": "256",
    }
    assert cgroup_files(SliceSpec("a.slice", memory_max="max")) == {"memory.max": "max"}


def test_parsers_of_kernel_interfaces() -> None:
    assert loaded_profiles("ringzero-demo (enforce)\n/usr/bin/man (complain)\n") == {
        "ringzero-demo": "enforce", "/usr/bin/man": "complain"}
    assert seccomp_mode("Name:\tsleep\nSeccomp:\t2\nSeccomp_filters:\t1\n") == 2
    assert seccomp_mode("Name:\tsleep\n") is None
    perf = json.dumps([{"pid": 577, "fd": 9, "prog_id": 90, "fd_type": "tracepoint", "tracepoint": "sys_enter_execve"}])
    assert attachments(perf) == {577: ["tracepoint:sys_enter_execve (prog 90)"]}
    assert attachments("Error: not supported") == {}


def test_hosts_option() -> None:
    """The suite's --hosts against a manifest's nodes (parse_endpoints with `nodes`)."""
    (e,) = parse_endpoints("vm1=ssh://root@127.0.0.1:2201", ["vm1", "vm2"])
    assert (e.name, e.url) == ("vm1", "ssh://root@127.0.0.1:2201")
    assert parse_endpoints("ssh://10.0.0.5", ["only"])[0].url == "ssh://root@10.0.0.5:22"
    with pytest.raises(ValueError, match="name it: NODE=ssh://"):
        parse_endpoints("ssh://10.0.0.5", ["vm1", "vm2"])
    with pytest.raises(ValueError, match="not a node of the manifest"):
        parse_endpoints("vm9=ssh://root@h:22", ["vm1"])
    with pytest.raises(ValueError, match="expected \\[NAME=\\]ssh://"):
        parse_endpoints("vm1=http://h", ["vm1"])


def test_junit_counts(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase name="test_declared[vm1::a::b]"/>'
        '<testcase name="test_declared[vm1::c::d]"><failure message="AssertionError: expected 1">x</failure></testcase>'
        '<testcase name="test_declared[vm1::e::f]"><error message="boom"/></testcase>'
        "</testsuite></testsuites>")
    c = junit_counts(str(report))
    assert (c.passed, c.failed, c.errors) == (1, 1, 1)
    assert c.failures == ["vm1::c::d: AssertionError: expected 1", "vm1::e::f: boom"]
