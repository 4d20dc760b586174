"""GuestLifecycle against a fake `virsh` on PATH: sizes in place (live or by a clean restart),
shuts down before removal, and never reads "virsh failed" as "shut off"."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from ringzero.guest import (
    DomainSize,
    GuestLifecycleProvider,
    parse_domain_size,
    planned,
    resize,
    restart_reason,
    virsh_connection,
)

# States the fake domain goes through, one line per `virsh domstate` call (the last repeats);
# every call is logged; `dumpxml` prints $FAKE_DIR/xml. FAKE_VIRSH_FAIL makes domstate fail
# like an unreachable host.
FAKE_VIRSH = """#!/bin/sh
echo "$@" >> "$FAKE_DIR/calls"
case "$*" in
  *domstate*)
    if [ -n "$FAKE_VIRSH_FAIL" ]; then echo "$FAKE_VIRSH_FAIL" >&2; exit 1; fi
    n=$(cat "$FAKE_DIR/n" 2>/dev/null || echo 1)
    line=$(sed -n "${n}p" "$FAKE_DIR/states"); [ -n "$line" ] || line=$(tail -n 1 "$FAKE_DIR/states")
    echo $((n + 1)) > "$FAKE_DIR/n"
    echo "$line";;
  *dumpxml*) cat "$FAKE_DIR/xml";;
esac
"""

XML = """<domain type="qemu"><name>vm1</name><memory unit="KiB">{max}</memory>
<currentMemory unit="KiB">{cur}</currentMemory><vcpu placement="static">{vcpus}</vcpu></domain>"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    virsh = tmp_path / "virsh"
    virsh.write_text(FAKE_VIRSH)
    virsh.chmod(virsh.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DIR", str(tmp_path))
    return tmp_path


def _domain(fake: Path, states: list[str], max_mib: int = 1024, cur_mib: int = 1024, vcpus: int = 1) -> None:
    (fake / "states").write_text("\n".join(states) + "\n")
    (fake / "xml").write_text(XML.format(max=max_mib * 1024, cur=cur_mib * 1024, vcpus=vcpus))


def _calls(fake: Path) -> list[str]:
    return [c.removeprefix("-q -c qemu:///system ") for c in (fake / "calls").read_text().splitlines()]


def _delete(states: list[str], fake: Path, timeout_s: float = 5) -> None:
    _domain(fake, states)
    props: dict[str, Any] = {"domain": "vm1", "host_uri": "qemu:///system", "shutdown_timeout_s": timeout_s}
    GuestLifecycleProvider().delete("vm1@id", props)


def test_running_guest_is_shut_down_and_waited_for(fake: Path) -> None:
    _delete(["running", "running", "shut off"], fake)
    calls = _calls(fake)
    assert "shutdown vm1" in calls and calls[-1] == "domstate vm1"
    assert not any(c.startswith("destroy") for c in calls)  # never a power cut


def test_shut_off_or_missing_guest_needs_nothing(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _delete(["shut off"], fake)
    monkeypatch.setenv("FAKE_VIRSH_FAIL", "error: failed to get domain 'vm1'")
    _delete(["running"], fake)
    assert "shutdown vm1" not in _calls(fake)


def test_virsh_failing_is_an_error_naming_the_vm_and_reason(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VIRSH_FAIL", "error: failed to connect to the hypervisor: Connection refused")
    with pytest.raises(RuntimeError, match=r"VirtualMachine 'vm1': cannot shut it down .*Connection refused"):
        _delete(["running"], fake)
    assert "shutdown vm1" not in _calls(fake)  # never read as "not running"


def test_guest_that_does_not_stop_is_a_named_failure_and_nothing_is_powered_off(fake: Path) -> None:
    with pytest.raises(RuntimeError, match=r"VirtualMachine 'vm1': no clean shutdown \(still 'running' 0.2 s"):
        _delete(["running"], fake, timeout_s=0.2)
    assert not any(c.startswith("destroy") for c in _calls(fake))


def test_paused_guest_is_a_named_failure(fake: Path) -> None:
    with pytest.raises(RuntimeError, match=r"no clean shutdown \(it is paused"):
        _delete(["paused"], fake)


def test_memory_within_the_maximum_is_set_live(fake: Path) -> None:
    _domain(fake, ["running"], max_mib=1280, cur_mib=1280)
    assert resize("qemu:///system", "vm1", 1024, 1) is False
    assert [c for c in _calls(fake) if c.startswith("set")] == ["setmem vm1 1048576 --config --live"]
    assert "shutdown vm1" not in _calls(fake)


def test_more_memory_than_the_maximum_is_a_clean_restart(fake: Path) -> None:
    _domain(fake, ["running", "running", "shut off"], max_mib=1024)
    assert resize("qemu:///system", "vm1", 1536, 2, poll_s=0.01) is True
    calls = _calls(fake)
    changed = [c for c in calls if c.startswith(("set", "start", "shutdown"))]
    assert changed == ["shutdown vm1", "setmaxmem vm1 1572864 --config", "setmem vm1 1572864 --config",
                       "setvcpus vm1 2 --maximum --config", "setvcpus vm1 2 --config", "start vm1"]


def test_fewer_vcpus_lower_the_current_count_before_the_maximum(fake: Path) -> None:
    _domain(fake, ["shut off"], vcpus=4)
    assert resize("qemu:///system", "vm1", 1024, 2) is True  # shut off: changed, and left shut off
    changed = [c for c in _calls(fake) if c.startswith(("set", "start", "shutdown"))]
    assert changed == ["setmaxmem vm1 1048576 --config", "setmem vm1 1048576 --config",
                       "setvcpus vm1 2 --config", "setvcpus vm1 2 --maximum --config"]


def test_a_guest_that_will_not_stop_is_left_unchanged(fake: Path) -> None:
    _domain(fake, ["running"], max_mib=1024)
    with pytest.raises(RuntimeError, match=r"VirtualMachine 'vm1': a restart is needed \(memory 2048 MiB.*its "
                                           r"definition was not changed and nothing was powered off"):
        resize("qemu:///system", "vm1", 2048, 1, timeout_s=0.1, poll_s=0.01)
    assert not any(c.startswith(("set", "start")) for c in _calls(fake))


def test_the_size_already_there_changes_nothing(fake: Path) -> None:
    _domain(fake, ["running"], max_mib=1024)
    assert resize("qemu:///system", "vm1", 1024, 1) is False
    assert _calls(fake) == ["dumpxml --inactive vm1"]


def test_domain_size_is_read_in_any_unit() -> None:
    assert parse_domain_size(XML.format(max=1310720, cur=1048576, vcpus=2)) == DomainSize(1280, 1024, 2)
    xml = '<domain><memory unit="GiB">2</memory><vcpu current="1">4</vcpu></domain>'
    assert parse_domain_size(xml) == DomainSize(2048, 2048, 1)


def test_preview_says_whether_the_guest_restarts() -> None:
    olds = {"domain": "vm1", "host_uri": "qemu:///system", "memory_mib": 1280, "vcpus": 1, "memory_max_mib": 1280,
            "guest_restart": "not required: a new domain is created with this size"}
    live = planned(olds, {**olds, "memory_mib": 1024})
    assert live["guest_restart"].startswith("not required: memory within the domain's maximum of 1280 MiB")
    assert live["memory_max_mib"] == 1280
    up = planned(olds, {**olds, "memory_mib": 1536, "vcpus": 2})
    assert up["guest_restart"] == ("required: memory 1536 MiB is above the domain's maximum of 1280 MiB; "
                                   "vCPUs 1 -> 2 (libvirt hot-plugs only vCPUs defined hot-pluggable)")
    assert up["memory_max_mib"] == 1536
    # nothing changed: the inputs stay as they were (no update on the next run)
    assert planned(up, {**olds, "memory_mib": 1536, "vcpus": 2, "memory_max_mib": None})["guest_restart"] == \
        up["guest_restart"]
    assert planned({}, olds)["guest_restart"].startswith("not required: a new domain")
    # as the engine hands them over: numbers as floats (a protobuf Struct), a size not known yet
    as_struct = planned({**olds, "memory_mib": 1280.0, "vcpus": 1.0, "memory_max_mib": 1280.0},
                        {**olds, "memory_mib": 2048.0, "vcpus": 1.0})
    assert as_struct["guest_restart"].startswith("required: memory 2048 MiB is above the domain's maximum of 1280 MiB")
    live = planned({**olds, "memory_mib": 1280.0, "vcpus": 1.0, "memory_max_mib": 1280.0},
                   {**olds, "memory_mib": 1024.0, "vcpus": 1.0})
    assert "maximum of 1280 MiB is set live" in live["guest_restart"] and live["memory_max_mib"] == 1280
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi.runtime.rpc.UNKNOWN
    assert planned(olds, {**olds, "memory_mib": unknown})["guest_restart"] == "unknown until the size is known"
    assert restart_reason(1024, 2, 1024, 2) == ""


def test_diff_replaces_only_for_another_domain_or_host() -> None:
    olds = {"domain": "vm1", "domain_id": "u1", "host_uri": "qemu:///system", "memory_mib": 1024, "vcpus": 1}
    p = GuestLifecycleProvider()
    assert p.diff("x", olds, dict(olds)).changes is False
    resized = p.diff("x", olds, {**olds, "memory_mib": 2048})
    assert resized.changes and resized.replaces == []
    assert p.diff("x", olds, {**olds, "domain_id": "u2"}).replaces == ["domain_id"]


def test_virsh_gets_the_key_and_the_pinned_host_key(tmp_path: Path) -> None:
    uri = "qemu+ssh://root@127.0.0.1:2212/system"
    out = virsh_connection(uri, tmp_path, "KEY", "[127.0.0.1]:2212 ssh-ed25519 AAAA")
    assert out == (f"qemu+ssh://root@127.0.0.1:2212/system?keyfile={tmp_path}/access&command={tmp_path}/ssh"
                   "&no_tty=1")
    wrapper = (tmp_path / "ssh").read_text()
    assert "StrictHostKeyChecking=yes" in wrapper and f"UserKnownHostsFile={tmp_path}/known_hosts" in wrapper
    assert (tmp_path / "known_hosts").read_text() == "[127.0.0.1]:2212 ssh-ed25519 AAAA\n"
    assert stat.S_IMODE((tmp_path / "access").stat().st_mode) == 0o600
    assert virsh_connection("qemu:///system", tmp_path) == "qemu:///system"


def test_create_and_update_wait_as_long_as_the_resource_says(fake: Path) -> None:
    """A lifecycle created for a domain that must restart waits its own shutdown_timeout_s, not 120 s."""
    _domain(fake, ["running"], max_mib=1024)
    props: dict[str, Any] = {"domain": "vm1", "domain_id": "u1", "host_uri": "qemu:///system", "memory_mib": 2048,
                             "vcpus": 1, "shutdown_timeout_s": 0.2}
    for call in (lambda: GuestLifecycleProvider().create(props),
                 lambda: GuestLifecycleProvider().update("vm1@u1", {**props, "memory_mib": 1024}, props)):
        with pytest.raises(RuntimeError, match=r"did not shut down \(still 'running' 0.2 s"):
            call()
