"""The node plan (what the Ansible module converges to) and the module's own plan logic."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from ringzero.kinds.slice.expect import shown_properties
from ringzero.paths import playbooks_dir
from ringzero.plan import node_plan
from ringzero.playbook import plan_hash
from ringzero.spec import SpecError
from tests.fixtures import local_topology


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ringzero_node", playbooks_dir() / "library" / "ringzero_node.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MODULE = _module()
PLAN = node_plan(local_topology(), "vm1")


def test_plan_carries_every_rendered_file_with_its_feature() -> None:
    features = {p: f["feature"] for p, f in PLAN["files"].items()}
    assert features["/etc/systemd/system/web.slice"] == "slices"
    assert features["/etc/systemd/system/ringzero-demo-web.service.d/ringzero-slice.conf"] == "slices"
    assert features["/etc/systemd/system/ringzero-demo-web.service.d/ringzero-seccomp-no-mkdir.conf"] == "seccomp"
    assert features["/etc/apparmor.d/ringzero-demo-enforce"] == "apparmor"
    assert features["/var/lib/kubelet/seccomp/profiles/ringzero/no-mkdir.json"] == "seccomp"
    assert features["/etc/systemd/system/ringzero-ebpf-execsnoop.service"] == "ebpf"
    assert features["/etc/default/grub.d/ringzero-xen.cfg"] == "host_prep"
    assert features["/etc/ringzero/nftables/demo.nft"] == "firewall"
    assert features["/etc/systemd/system/ringzero-demo-web.service.d/ringzero-namespaces-demo-web.conf"] == "namespaces"
    # the Landlock launcher is the one program among them
    assert {p: f["mode"] for p, f in PLAN["files"].items() if f["mode"] != "0644"} == {
        "/usr/local/libexec/ringzero/landlock-exec": "0755"}


def test_units_restart_when_any_of_their_files_change() -> None:
    units = {u["unit"]: u for u in PLAN["units"]}
    web = units["ringzero-demo-web.service"]
    assert web["owned"] is True and web["feature"] == "services"
    dropins = "/etc/systemd/system/ringzero-demo-web.service.d/ringzero-"
    assert web["files"] == [  # its unit, every part's drop-in, and what its launcher reads and is
        "/etc/ringzero/landlock/demo-web.json",
        "/etc/systemd/system/ringzero-demo-web.service",
        *(dropins + part for part in ("apparmor-ringzero-demo-web.conf", "fsview-demo-web.conf",
                                      "namespaces-demo-web.conf", "seccomp-no-mkdir.conf", "slice.conf",
                                      "sockfilter-demo-web.conf")),
        "/usr/local/libexec/ringzero/landlock-exec",
    ]
    assert units["ringzero-ebpf-execsnoop.service"]["owned"] is True


def test_apparmor_modes_slices_and_packages() -> None:
    assert [(p["name"], p["mode"]) for p in PLAN["apparmor"]] == [
        ("ringzero-demo-enforce", "enforce"), ("ringzero-demo-complain", "complain"), ("ringzero-demo-web", "enforce")]
    web = next(s for s in PLAN["slices"] if s["unit"] == "web.slice")
    assert web["properties"]["MemoryMax"] == "536870912" and web["properties"]["CPUQuota"] == "50%"
    assert web["expect"]["CPUQuotaPerSecUSec"] == "500ms"
    assert PLAN["packages"] == ["xen-system-amd64"]
    vm2 = node_plan(local_topology(), "vm2")
    assert vm2["packages"] == ["qemu-system-x86", "libvirt-daemon-system", "libvirt-clients"]
    # vm2's KVM settings come from the host whose libvirtd runs in it (vm2-libvirt)
    assert {m["module"]: m["value"] for m in vm2["module_params"]} == {"kvm_intel": "0", "kvm_amd": "0"}


@pytest.mark.parametrize(("percent", "shown"), [(50, "500ms"), (1, "10ms"), (100, "1s"), (150, "1.500000s"),
                                                (200, "2s")])
def test_cpu_quota_as_systemctl_show_prints_it(percent: int, shown: str) -> None:
    assert shown_properties({"CPUQuota": f"{percent}%"}) == {"CPUQuotaPerSecUSec": shown}


def test_unknown_node_is_refused() -> None:
    with pytest.raises(SpecError, match="Node 'ghost'"):
        node_plan(local_topology(), "ghost")


def test_hash_covers_plan_and_playbooks() -> None:
    assert plan_hash(PLAN) == plan_hash(node_plan(local_topology(), "vm1"))
    assert plan_hash(PLAN) != plan_hash(node_plan(local_topology(), "vm2"))


def test_feature_selection_keeps_a_unit_other_features_change_as_confined_only() -> None:
    seccomp = MODULE.select(PLAN, ["seccomp"])
    assert set(seccomp["files"]) == {
        "/etc/ringzero/seccomp/no-mkdir.json", "/var/lib/kubelet/seccomp/profiles/ringzero/no-mkdir.json",
        "/etc/systemd/system/ringzero-demo-web.service.d/ringzero-seccomp-no-mkdir.conf"}
    (web,) = seccomp["units"]
    assert web["unit"] == "ringzero-demo-web.service" and web["owned"] is False
    assert web["files"] == ["/etc/systemd/system/ringzero-demo-web.service.d/ringzero-seccomp-no-mkdir.conf"]
    assert seccomp["apparmor"] == seccomp["slices"] == seccomp["packages"] == []
    assert MODULE.select(PLAN, None) is PLAN


def test_each_feature_has_its_playbook_and_every_entry_a_feature() -> None:
    import yaml

    from ringzero.plan import FEATURES

    selected: dict[str, str] = {}
    for path in sorted(playbooks_dir().glob("*.yml")):
        for play in yaml.safe_load(path.read_text()):
            for task in play["tasks"]:
                features = task.get("ringzero_node", {}).get("features")
                if features:
                    (feature,) = features
                    selected[feature] = path.name
    assert sorted(selected) == sorted(FEATURES), selected
    entries = [*PLAN["files"].values(), *PLAN["apparmor"], *PLAN["slices"], *PLAN["units"], *PLAN["hooks"]]
    assert {e["feature"] for e in entries} <= {*FEATURES, "confined"}


def test_every_file_and_unit_carries_its_adopt_flag() -> None:
    assert all(f["adopt"] is False for f in PLAN["files"].values())
    assert all(u["adopt"] is False for u in PLAN["units"])
    from ringzero.plan import policies_plan
    from ringzero.spec import AppArmorProfileSpec, HostSpec, NodePolicies, ServiceSpec, SliceSpec

    policies = NodePolicies("vm1", services=(ServiceSpec("ssh.service", "/usr/sbin/sshd -D", adopt=True),
                                             ServiceSpec("web.service", "/bin/sleep infinity")),
                            apparmor=(AppArmorProfileSpec("usr.sbin.cupsd", adopt=True),),
                            slices=(SliceSpec("web.slice", services=("ssh.service", "cron.service")),))
    plan = policies_plan(policies, HostSpec("vm1"))
    adopted = sorted(p for p, f in plan["files"].items() if f["adopt"])
    assert adopted == ["/etc/apparmor.d/usr.sbin.cupsd", "/etc/systemd/system/ssh.service"]
    assert {u["unit"]: u["adopt"] for u in plan["units"]} == {
        "ssh.service": True, "web.service": False, "cron.service": False}
    assert [(p["name"], p["adopt"]) for p in plan["apparmor"]] == [("usr.sbin.cupsd", True)]
    assert all(p["adopt"] is False for p in PLAN["apparmor"])


@pytest.mark.parametrize(("directives", "shown"), [
    ({"CPUWeight": "idle"}, {"CPUWeight": "idle"}),
    ({"TasksMax": "infinity", "MemoryMax": "infinity"}, {"TasksMax": "infinity", "MemoryMax": "infinity"}),
    # resolved on the node against its own memory / task limit: nothing to compare before then
    ({"MemoryMax": "50%", "MemoryHigh": "1610612736", "TasksMax": "10%"}, {"MemoryHigh": "1610612736"}),
])
def test_unusual_values_as_systemctl_show_prints_them(directives: dict[str, str], shown: dict[str, str]) -> None:
    assert shown_properties(directives) == shown
