"""`pulumi up` boots Debian guests on libvirtd; SSH on 127.0.0.1 with pinned host keys.

Runs in order: hand-made objects → up → checks in the guests → no-op up → memory change
(clean restart, same disk) → destroy (ours gone, hand-made kept).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.e2e.conftest import URI, Guest, Stack, virsh

HANDMADE_DOMAIN = "handmade-rz-e2e"
HANDMADE_VOLUME = "handmade-rz-e2e.qcow2"
HANDMADE_XML = f"""<domain type='qemu'><name>{HANDMADE_DOMAIN}</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os></domain>"""

SHUTDOWN_MARKER_UNIT = """[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=/bin/sh -c 'echo clean > /root/ringzero-shutdown; sync'

[Install]
WantedBy=multi-user.target
"""

pytestmark = pytest.mark.e2e


def _mem_total_kib(guest: Guest) -> int:
    match = re.search(r"MemTotal:\s+(\d+)", guest.ssh("cat /proc/meminfo"))
    assert match, "no MemTotal in the guest's /proc/meminfo"
    return int(match.group(1))


def _vms(stack: Stack) -> list[dict[str, object]]:
    return list(stack.config["ringzero:vms"])


def test_handmade_objects_exist_before(stack: Stack) -> None:
    if HANDMADE_DOMAIN not in virsh("list", "--all", "--name").split():
        xml = stack.workdir / "handmade.xml"
        xml.write_text(HANDMADE_XML)
        virsh("define", str(xml))
    if HANDMADE_VOLUME not in virsh("vol-list", "default"):
        virsh("vol-create-as", "default", HANDMADE_VOLUME, "16M", "--format", "qcow2")
    assert HANDMADE_DOMAIN in virsh("list", "--all", "--name").split()


def test_up_boots_guests_that_answer_ssh(stack: Stack) -> None:
    t0 = time.monotonic()
    stack.project.pulumi("up", "--yes", timeout=1500)
    print(f"pulumi up (2 guests) took {time.monotonic() - t0:.0f} s")
    outs = stack.outputs()
    assert set(outs["vms"]) == {"vm1", "vm2", "nested1"}
    assert outs["vms"]["nested1"]["host"] == "vm2-libvirt" and outs["vms"]["nested1"]["ssh_endpoint"] == ""
    for name in ("vm1", "vm2"):
        vm = outs["vms"][name]
        assert vm["host"] == "local" and vm["ssh_endpoint"] == f"root@127.0.0.1:{vm['ssh_port']}"
        assert vm["console_log"] == f"/var/log/libvirt/qemu/{name}-console.log"
        assert "running" in virsh("domstate", name)


@pytest.mark.parametrize("name", ["vm1", "vm2"])
def test_guest_sees_its_declared_resources(stack: Stack, name: str) -> None:
    spec = next(v for v in _vms(stack) if v["name"] == name)
    guest = stack.guest(name)
    assert guest.ssh("hostname") == name
    assert int(guest.ssh("nproc")) == spec["vcpus"]
    mem_kib = _mem_total_kib(guest)
    # the kernel reserves some memory for itself: MemTotal is a little below what was declared
    assert 0.80 * spec["memory_mib"] * 1024 < mem_kib <= spec["memory_mib"] * 1024  # type: ignore[operator]
    assert guest.ssh("cloud-init status") .startswith("status: done")


def test_remote_host_defines_its_domain_inside_the_guest(stack: Stack) -> None:
    """Host vm2-libvirt (qemu+ssh to vm2's libvirtd) put nested1 there, not on this machine."""
    inside = stack.guest("vm2").ssh("virsh -q -c qemu:///system list --all --name")
    assert "nested1" in inside.split()
    assert "blank.qcow2" in stack.guest("vm2").ssh("virsh -q -c qemu:///system vol-list default")
    assert "nested1" not in virsh("list", "--all", "--name").split()


def test_host_key_is_pinned(stack: Stack) -> None:
    """A known_hosts with another key for the same endpoint makes SSH refuse the guest."""
    guest = stack.guest("vm1")
    other = stack.outputs()["vms"]["vm2"]["known_hosts"].split(" ", 1)[1]
    guest.known_hosts.write_text(f"[127.0.0.1]:{guest.port} {other}\n")
    res = guest.run("true")
    assert res.returncode != 0 and "Host key verification failed" in res.stderr, res.stderr
    stack.guest("vm1").ssh("true")  # the right key works again


def test_noop_up_changes_nothing(stack: Stack) -> None:
    preview = stack.project.pulumi("preview", "--expect-no-changes", "--json")
    assert {s["op"] for s in json.loads(preview.stdout)["steps"]} == {"same"}


def test_memory_change_restarts_cleanly_and_keeps_the_disk(stack: Stack) -> None:
    guest = stack.guest("vm1")
    guest.ssh("echo kept > /root/ringzero-marker && sync")
    # a unit whose ExecStop only runs when systemd shuts the guest down (never on power-off)
    guest.ssh(
        "cat > /etc/systemd/system/rz-shutdown-marker.service && systemctl daemon-reload"
        " && systemctl enable --now rz-shutdown-marker.service",
        stdin=SHUTDOWN_MARKER_UNIT,
    )
    disk_before = virsh("vol-key", "--pool", "default", "vm1.qcow2").strip()
    boot_before = guest.ssh("cat /proc/sys/kernel/random/boot_id")
    next(v for v in stack.config["ringzero:vms"] if v["name"] == "vm1")["memory_mib"] = 1280
    stack.write_config()
    preview = json.loads(stack.project.pulumi("preview", "--json").stdout)
    replaced = {s["urn"].rsplit("::", 1)[1] for s in preview["steps"] if s["op"] in ("replace", "create-replacement")}
    assert "vm1-domain" in replaced and "vm1-disk" not in replaced, replaced
    stack.project.pulumi("up", "--yes", timeout=900)
    guest = stack.guest("vm1")
    assert guest.ssh("cat /root/ringzero-marker") == "kept"
    assert guest.ssh("cat /proc/sys/kernel/random/boot_id") != boot_before
    assert virsh("vol-key", "--pool", "default", "vm1.qcow2").strip() == disk_before
    mem_kib = _mem_total_kib(guest)
    assert mem_kib > 1100 * 1024
    # the guest went down through ACPI and systemd (a clean shutdown), not a power cut
    assert guest.ssh("cat /root/ringzero-shutdown") == "clean"


def test_destroy_removes_ours_and_keeps_handmade(stack: Stack) -> None:
    stack.project.pulumi("destroy", "--yes", "--run-program", timeout=900)
    domains = virsh("list", "--all", "--name").split()
    volumes = virsh("vol-list", "default")
    for name in ("vm1", "vm2"):
        assert name not in domains
        assert f"{name}.qcow2" not in volumes and f"{name}-seed.iso" not in volumes
    assert "debian-12.qcow2" not in volumes
    assert HANDMADE_DOMAIN in domains and HANDMADE_VOLUME in volumes
    virsh("undefine", HANDMADE_DOMAIN)
    virsh("vol-delete", "--pool", "default", HANDMADE_VOLUME)
    assert URI
