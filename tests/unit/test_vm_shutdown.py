"""The VM shutdown hook against a fake `virsh` on PATH: "shut off" and "virsh failed" differ."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ringzero.vm import shutdown_before_delete, virsh_uri

# States the fake domain goes through, one line per `virsh domstate` call (the last repeats);
# `virsh shutdown` is logged. FAKE_VIRSH_FAIL makes domstate fail like an unreachable host.
FAKE_VIRSH = """#!/bin/sh
echo "$@" >> "$FAKE_DIR/calls"
case "$*" in
  *domstate*)
    if [ -n "$FAKE_VIRSH_FAIL" ]; then echo "$FAKE_VIRSH_FAIL" >&2; exit 1; fi
    n=$(cat "$FAKE_DIR/n" 2>/dev/null || echo 1)
    line=$(sed -n "${n}p" "$FAKE_DIR/states"); [ -n "$line" ] || line=$(tail -n 1 "$FAKE_DIR/states")
    echo $((n + 1)) > "$FAKE_DIR/n"
    echo "$line";;
  *shutdown*) exit 0;;
esac
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    virsh = tmp_path / "virsh"
    virsh.write_text(FAKE_VIRSH)
    virsh.chmod(virsh.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DIR", str(tmp_path))
    return tmp_path


def _run(fake: Path, states: list[str], timeout_s: float = 5) -> list[str]:
    (fake / "states").write_text("\n".join(states) + "\n")
    warnings: list[str] = []
    shutdown_before_delete("qemu:///system", "vm1", timeout_s=timeout_s, poll_s=0.01, warn=warnings.append)
    return warnings


def test_running_guest_is_shut_down_and_waited_for(fake: Path) -> None:
    assert _run(fake, ["running", "running", "shut off"]) == []
    calls = (fake / "calls").read_text().splitlines()
    assert "-q -c qemu:///system shutdown vm1" in calls and calls[-1].endswith("domstate vm1")


def test_shut_off_or_missing_guest_needs_nothing(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(fake, ["shut off"]) == []
    monkeypatch.setenv("FAKE_VIRSH_FAIL", "error: failed to get domain 'vm1'")
    assert _run(fake, ["running"]) == []
    assert "shutdown" not in (fake / "calls").read_text()


def test_virsh_failing_is_an_error_naming_the_vm_and_reason(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VIRSH_FAIL", "error: failed to connect to the hypervisor: Connection refused")
    with pytest.raises(RuntimeError, match=r"VirtualMachine 'vm1': cannot shut it down .*Connection refused"):
        _run(fake, ["running"])
    assert "shutdown" not in (fake / "calls").read_text()  # never read as "not running"


def test_guest_that_does_not_stop_is_reported_forced_off(fake: Path) -> None:
    warnings = _run(fake, ["running"], timeout_s=0.2)
    assert len(warnings) == 1 and "VirtualMachine 'vm1'" in warnings[0] and "forced off" in warnings[0]
    assert "still 'running'" in warnings[0]


def test_paused_guest_is_reported_forced_off(fake: Path) -> None:
    warnings = _run(fake, ["paused"])
    assert len(warnings) == 1 and "paused" in warnings[0] and "forced off" in warnings[0]


def test_virsh_gets_the_providers_key_and_pinned_host_keys(tmp_path: Path) -> None:
    uri = "qemu+ssh://root@127.0.0.1:2212/system?keyfile=/k/access&knownhosts=/k/known_hosts-h&sshauth=privkey"
    out = virsh_uri(uri, tmp_path)
    assert out == (f"qemu+ssh://root@127.0.0.1:2212/system?keyfile=/k/access&command={tmp_path}/ssh&no_tty=1")
    wrapper = (tmp_path / "ssh").read_text()
    assert "StrictHostKeyChecking=yes" in wrapper and "UserKnownHostsFile=/k/known_hosts-h" in wrapper
    assert virsh_uri("qemu:///system", tmp_path) == "qemu:///system"
