"""Compliance checks on canned node output: parsers, ids, and that each check can fail."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import pytest

from ringzero.checks import Check, Probe, expectations
from ringzero.checks.hosts import parse_endpoints
from ringzero.checks.probe import TIMED_OUT, parse
from ringzero.checks.run import judge
from ringzero.kinds.seccomp.checks import UNSAFE_SYSCALLS, probe_syscalls
from ringzero.kinds.seccomp.checks import checks as seccomp_checks
from ringzero.kinds.slice.expect import cgroup_files
from ringzero.spec import SeccompProfileSpec, SliceSpec, SyscallRule
from ringzero.spec._libseccomp import syscall_number
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
        if "ringzero-probe" in command:
            keys = args[1:]
            return Result(0, "".join(f"\x1e{k}\n\x1emissing\n" for k in keys))
        return Result(1, "", "No such file or directory")


def test_ids_are_readable_and_unique() -> None:
    ids = [c.id for c in CHECKS]
    assert len(ids) == len(set(ids)) >= 30
    assert "vm1::slice:web.slice::memory.max" in ids
    assert "vm1::seccomp:no-mkdir::ringzero-demo-web.service:sethostname" in ids
    assert "vm2::host:kvm::nested-virt" in ids


UNDECIDABLE_ON_A_DEAD_HOST = {k: {"fail", "error"} for k in ("namespaces", "fsview", "landlock", "firewall",
                                                              "sockfilter")}


@pytest.mark.parametrize("check", CHECKS, ids=[c.id for c in CHECKS])
def test_each_check_fails_where_its_policy_is_absent(check: Check, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ringzero.kinds.ebpf.checks.EVENT_TIMEOUT_S", 0)
    monkeypatch.setattr("ringzero.kinds.ebpf.checks.ATTACH_GRACE_S", 0)
    monkeypatch.setattr("time.sleep", lambda _s: None)
    probe = Probe(DeadHost(), check.node)
    probe.fetch(check.reads)
    alone = dataclasses.replace(check, requires=())  # its own verdict, not its prerequisites
    status, message = judge(alone, probe, {}, {})
    # what exists nowhere fails; a check whose own reads come back empty (PID 1's namespaces, the
    # node's Landlock ABI, nft's listing, a probe that could not run) cannot decide: an error
    assert status in UNDECIDABLE_ON_A_DEAD_HOST.get(check.subject.split(":")[0], {"fail"}), (status, message)


def test_probe_output_parses_values_and_missing_markers() -> None:
    out = "\x1efile:/a\nx\ny\n\n\x1efile:/b\n\x1emissing\n\x1eunit:web.slice\nActiveState=active\n\n"
    assert parse(out) == {"file:/a": "x\ny\n", "file:/b": None, "unit:web.slice": "ActiveState=active\n"}


def test_cgroup_values_as_the_kernel_shows_them() -> None:
    spec = SliceSpec("web.slice", cpu_weight=200, cpu_quota_percent=50, memory_high="384M", memory_max=1000000001,
                     io_weight=50, tasks_max=256)
    assert cgroup_files(spec) == {
        "cpu.weight": "200", "cpu.max": "50000 100000", "memory.high": "402653184",
        "memory.max": "999997440",  # rounded down to whole pages
        "io.weight": "default 50", "pids.max": "256",
    }
    assert cgroup_files(SliceSpec("a.slice", memory_max="max")) == {"memory.max": "max"}


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


# ---- the seccomp filter probe: side-effect free, bounded, never a pass it cannot prove ------
def _seccomp(names: tuple[str, ...], arch: str = "x86_64") -> Check:
    spec = SeccompProfileSpec("p", "SCMP_ACT_ALLOW", architecture=arch,
                              rules=(SyscallRule(names, "SCMP_ACT_ERRNO", "EPERM"),), services=("web.service",))
    (denied,) = [c for c in seccomp_checks("n1", spec) if c.aspect.startswith("web.service:")
                 and c.aspect != "web.service:Seccomp"]
    return denied


class SeccompHost:
    """A node as the seccomp probe sees it: `filtered` / `free` are what the two transient
    units print (or a Result, or a callable run instead); every command is recorded."""

    def __init__(self, filtered: object = "1\n1\n", free: object = "1\n14\n", *, machine: str = "x86_64",
                 unit_filter: str = "~sethostname mkdir") -> None:
        self.filtered, self.free = filtered, free
        self.values = {"arch:": machine + "\n", "unit:web.service":
                       f"SystemCallFilter={unit_filter}\nSystemCallErrorNumber=EPERM\nSystemCallArchitectures=native\n"}
        self.commands: list[str] = []

    def run(self, command: str, *args: str) -> Result:
        if "ringzero-probe" in command:
            return Result(0, "".join(f"\x1e{k}\n{self.values.get(k, '')}\n" for k in args[1:]))
        line = args[0]
        self.commands.append(command % args)
        out = self.filtered if "SystemCallFilter=" in line else self.free
        if callable(out):
            out = out()
        return out if isinstance(out, Result) else Result(0, str(out))


def _judge(check: Check, host: SeccompHost) -> tuple[str, str]:
    probe = Probe(host, "n1")
    probe.fetch(check.reads)
    return judge(check, probe, {check.control: check}, {})


def test_the_seccomp_probe_never_calls_a_syscall_that_takes_effect_whatever_its_arguments() -> None:
    unsafe = sorted(n for n in UNSAFE_SYSCALLS if syscall_number("x86_64", n) is not None)
    assert {"sync", "pause", "fork", "vfork", "setsid", "vhangup", "exit", "exit_group", "munlockall",
            "sched_yield"} <= set(unsafe)
    spec = SeccompProfileSpec("p", "SCMP_ACT_ALLOW", rules=(
        SyscallRule(("sync", "pause", "sethostname"), "SCMP_ACT_ERRNO"),
        SyscallRule((*unsafe, "mkdir", "sethostname", "reboot", "settimeofday", "mount"), "SCMP_ACT_ERRNO")))
    assert probe_syscalls(spec) == ("sethostname", "mkdir", "reboot", "settimeofday")  # rule order, at most 4
    assert not set(probe_syscalls(spec)) & UNSAFE_SYSCALLS
    # only unsafe ones: refused (an error naming them), and nothing is run
    check, host = _seccomp(("sync", "pause")), SeccompHost()
    status, message = _judge(check, host)
    assert (status, host.commands) == ("error", [])
    assert "refusing to probe" in message and "sync, pause" in message


def test_a_profile_for_another_architecture_is_not_applicable_and_runs_nothing() -> None:
    check, host = _seccomp(("mkdirat",), arch="aarch64"), SeccompHost()  # mkdirat on aarch64 is pause on x86_64
    status, message = _judge(check, host)
    assert (status, host.commands) == ("n/a", [])
    assert "declared for aarch64" in message and "x86_64" in message
    check, host = _seccomp(("mkdir",)), SeccompHost(machine="sparc64")
    assert _judge(check, host)[0] == "error" and host.commands == []


def test_the_filter_probe_passes_only_on_what_it_proves_and_runs_both_calls_sandboxed() -> None:
    check, host = _seccomp(("sethostname", "mkdir")), SeccompHost()
    assert check.aspect == "web.service:sethostname"
    assert _judge(check, host) == ("pass", "")
    filtered, free = host.commands
    for cmd in (filtered, free):  # bounded, unprivileged, sandboxed; never the call as root outside a unit
        assert cmd.startswith("timeout ") and "systemd-run" in cmd and "User=nobody" in cmd
        assert "CapabilityBoundingSet=" in cmd and "NoNewPrivileges=yes" in cmd and "RuntimeMaxSec=" in cmd
        assert not any(d in cmd for d in ("ProtectClock", "ProtectKernel", "PrivateDevices", "RestrictNamespaces",
                                          "ProtectHostname", "MemoryDenyWriteExecute", "LockPersonality"))
    assert "SystemCallFilter=~sethostname mkdir" in filtered and "SystemCallErrorNumber=EPERM" in filtered
    assert "SystemCallFilter" not in free
    assert " 170 83" in filtered  # x86_64's sethostname and mkdir


def test_the_filter_probe_fails_where_the_filter_is_absent() -> None:
    check = _seccomp(("sethostname", "mkdir"))
    status, message = _judge(check, SeccompHost(unit_filter=""))
    assert status == "fail" and "no SystemCallFilter=" in message
    # the service removed: systemd still shows properties, with its no-errno (kill) sentinel
    gone = SeccompHost()
    gone.values["unit:web.service"] = "LoadState=not-found\nSystemCallFilter=~\nSystemCallErrorNumber=2147483646\n"
    status, message = _judge(check, gone)
    assert (status, gone.commands) == ("fail", []) and "not loaded (LoadState=not-found)" in message
    killing = SeccompHost()
    killing.values["unit:web.service"] = "SystemCallFilter=~sethostname mkdir\nSystemCallErrorNumber=2147483646\n"
    status, message = _judge(check, killing)
    assert (status, killing.commands) == ("fail", []) and "SystemCallErrorNumber=2147483646" in message
    # declared by the unit, but not denying: mkdir fails with its own EFAULT
    status, message = _judge(check, SeccompHost(filtered="1\n14\n"))
    assert status == "fail" and "mkdir() gave EFAULT, expected EPERM" in message


def test_the_filter_probe_is_an_error_when_it_cannot_run_or_prove(monkeypatch: pytest.MonkeyPatch) -> None:
    check = _seccomp(("sethostname", "mkdir"))
    status, message = _judge(check, SeccompHost(filtered=Result(1, "", "Failed to start transient service unit")))
    assert status == "error" and "Failed to start transient service unit" in message
    status, message = _judge(check, SeccompHost(free=Result(124)))  # timeout(1) ended it
    assert status == "error" and "did not finish within" in message
    status, message = _judge(check, SeccompHost(free="1\n1\n"))  # indistinguishable without the filter
    assert status == "error" and "proves nothing" in message
    # a connection that never answers: the local watchdog ends the wait
    monkeypatch.setattr("ringzero.checks.probe.WATCHDOG_SLACK_S", 0)
    monkeypatch.setattr("ringzero.checks.probe.KILL_AFTER_S", 0)
    monkeypatch.setattr("ringzero.kinds.seccomp.checks.PROBE_TIMEOUT_S", 0.2)
    status, message = _judge(check, SeccompHost(filtered=lambda: time.sleep(3)))
    assert status == "error" and "did not answer" in message


def test_a_read_that_times_out_is_an_error() -> None:
    assert parse("\x1eshell:sleep 99\n\x1etimeout\n") == {"shell:sleep 99": TIMED_OUT}
    check = _seccomp(("mkdir",))
    host = SeccompHost()
    host.values["arch:"] = "\x1etimeout"
    status, message = _judge(check, host)
    assert (status, host.commands) == ("error", []) and "did not finish within" in message


def test_node_state_comparison_names_each_change() -> None:
    from tests.node_state import NodeState, changes

    before = NodeState("rz-kernel rz-kernel (none)", 0.4, frozenset({"ssh.service"}),
                       frozenset({"1 systemd /init.scope"}), {"/etc/hostname": "f 644 root:root  abc"})
    assert changes(before, before) == []
    after = NodeState(" (none)", 3600.0, frozenset({"ssh.service", "run-u7.service"}), frozenset(),
                      {"/etc/hostname": "f 644 root:root  abd", "/tmp/x": "d 755 root:root "})
    assert changes(before, after) == [
        "hostname: 'rz-kernel rz-kernel (none)' -> ' (none)'", "clock stepped by +3599.6 s",
        "unit started: run-u7.service", "process gone: 1 systemd /init.scope",
        "/etc/hostname: f 644 root:root  abc -> f 644 root:root  abd", "/tmp/x: absent -> d 755 root:root "]
    assert changes(before, NodeState(before.hostname, 5.0, before.units, before.processes, before.paths)) == []
