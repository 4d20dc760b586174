"""Rendering: golden files for the reference stack, and no user string can add a directive."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from ringzero.kinds.apparmor.render import render_apparmor
from ringzero.kinds.seccomp.expect import seccomp_oci
from ringzero.kinds.seccomp.render import render_seccomp
from ringzero.kinds.slice.expect import slice_directives
from ringzero.kinds.slice.render import render_slice
from ringzero.spec import AppArmorProfileSpec, FileRule, SeccompProfileSpec, SliceSpec, SyscallRule
from tests.artifacts import all_artifacts
from tests.fixtures import local_topology

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RINGZERO_UPDATE_GOLDEN") == "1"
ARTIFACTS = all_artifacts(local_topology())


def _golden_name(name: str) -> str:
    return name.replace("/", "__")


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_matches_golden(name: str) -> None:
    path = GOLDEN / _golden_name(name)
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(ARTIFACTS[name])
    assert path.exists(), f"no golden file {path}; run with RINGZERO_UPDATE_GOLDEN=1 and review the diff"
    assert ARTIFACTS[name] == path.read_text()


def test_no_stale_golden_files() -> None:
    expected = {_golden_name(n) for n in ARTIFACTS}
    assert {p.name for p in GOLDEN.iterdir()} == expected


def test_slice_directives_from_spec() -> None:
    s = SliceSpec("web.slice", cpu_weight=200, cpu_quota_percent=50, memory_high="384M", memory_max="max",
                  io_weight=10, tasks_max=64)
    assert slice_directives(s) == [
        ("CPUWeight", "200"), ("CPUQuota", "50%"), ("MemoryHigh", "402653184"), ("MemoryMax", "infinity"),
        ("IOWeight", "10"), ("TasksMax", "64"),
    ]


def test_systemd_specifiers_are_escaped() -> None:
    text = render_slice(SliceSpec("web.slice", description="100% of %n \\ things"))["/etc/systemd/system/web.slice"]
    assert "Description=100%% of %%n \\\\ things\n" in text


def test_apparmor_modes_and_rules() -> None:
    p = AppArmorProfileSpec("demo", mode="complain", attach="/usr/bin/demo",
                            files=(FileRule("/etc/hostname", "r"), FileRule("/etc/shadow", "r", deny=True)))
    text = render_apparmor(p)["/etc/apparmor.d/demo"]
    assert "profile demo /usr/bin/demo flags=(complain) {" in text
    assert "  /etc/hostname r,\n" in text and "  deny /etc/shadow r,\n" in text
    enforce = render_apparmor(AppArmorProfileSpec("demo"))["/etc/apparmor.d/demo"]
    assert "profile demo {" in enforce and "flags" not in enforce


def test_apparmor_profile_has_exactly_the_declared_rules() -> None:
    """A rule line per declared rule: nothing a path could smuggle in adds one."""
    p = AppArmorProfileSpec("demo", files=(FileRule("/srv/**", "r"),), capabilities=("chown",))
    body = render_apparmor(p)["/etc/apparmor.d/demo"].split("{", 1)[1]
    rules = [ln.strip() for ln in body.splitlines() if ln.strip().endswith(",")]
    assert rules == ["capability chown,", "/srv/** r,"]


def test_seccomp_oci_and_systemd_forms() -> None:
    p = SeccompProfileSpec("no-mkdir", default_action="SCMP_ACT_ALLOW",
                           rules=(SyscallRule(("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", "EACCES"),),
                           services=("demo.service",))
    assert seccomp_oci(p) == {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
    }
    files = render_seccomp(p)
    assert json.loads(files["/etc/ringzero/seccomp/no-mkdir.json"]) == seccomp_oci(p)
    assert json.loads(files["/var/lib/kubelet/seccomp/profiles/ringzero/no-mkdir.json"]) == seccomp_oci(p)
    dropin = files["/etc/systemd/system/demo.service.d/ringzero-seccomp-no-mkdir.conf"]
    assert "SystemCallFilter=~mkdir mkdirat\n" in dropin and "SystemCallErrorNumber=EACCES\n" in dropin


def test_cloud_init_is_yaml_with_exact_values() -> None:
    """Keys with newlines and YAML-special characters stay inside their string values."""
    from ringzero.render import render_cloud_init
    from ringzero.spec import VmSpec

    evil = 'ssh-ed25519 AAAA x"\nruncmd: [rm -rf /] # }'
    ud, md = render_cloud_init(VmSpec("vm1", "h", "i"), authorized_keys=[evil],
                               host_key_private="-----BEGIN-----\nabc: {x}\n-----END-----\n",
                               host_key_public="ssh-ed25519 AAAA", instance_id="i-1")
    doc = yaml.safe_load(ud)
    assert ud.startswith("#cloud-config\n")
    # root is the only user: no image default user (it would get the same keys)
    assert doc["users"] == [{"name": "root", "lock_passwd": True, "ssh_authorized_keys": [evil]}]
    assert "ssh_authorized_keys" not in doc and "runcmd" not in doc
    assert doc["ssh_genkeytypes"] == ["ed25519"]  # the provided type: cloud-init generates none
    assert doc["ssh_keys"]["ed25519_private"] == "-----BEGIN-----\nabc: {x}\n-----END-----\n"
    assert yaml.safe_load(md) == {"instance-id": "i-1", "local-hostname": "vm1"}
    other = yaml.safe_load(render_cloud_init(VmSpec("vm1", "h", "i", ssh_user="ops"), authorized_keys=["k"],
                                             host_key_private="p", host_key_public="q", instance_id="i")[0])
    assert other["users"] == [{"name": "ops", "lock_passwd": True, "sudo": "ALL=(ALL) NOPASSWD:ALL",
                               "shell": "/bin/bash", "ssh_authorized_keys": ["k"]}]


@pytest.mark.parametrize("name", sorted(n for n in ARTIFACTS if n.endswith((".xml", ".xsl"))))
def test_xml_is_well_formed(name: str) -> None:
    ET.fromstring(ARTIFACTS[name])


def test_slice_directives_for_values_systemd_resolves_itself() -> None:
    s = SliceSpec("web.slice", cpu_weight="idle", memory_min="5%", memory_low=0, memory_high="1.5G",
                  memory_max="50%", tasks_max="10%")
    assert slice_directives(s) == [("CPUWeight", "idle"), ("MemoryMin", "5%"), ("MemoryLow", "0"),
                                   ("MemoryHigh", "1610612736"), ("MemoryMax", "50%"), ("TasksMax", "10%")]
    assert slice_directives(SliceSpec("a.slice", tasks_max="infinity")) == [("TasksMax", "infinity")]
