"""Playbooks and compliance suite on one real guest: converge, idempotence, drift, removal,
and negative controls. Tests run in order and share the guest (see conftest)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ringzero.checks import expectations
from ringzero.plan import node_plan
from ringzero.playbook import RunResult, run_playbook
from ringzero.spec import HostSpec, NodePolicies, SliceSpec, Topology, to_manifest
from tests.fixtures import junit_statuses
from tests.kernel.conftest import NODES, Node

pytestmark = pytest.mark.kernel

# Every feature playbook, those that confine a service before the one that installs it: the
# demo service starts through Landlock's launcher and under its AppArmor profile, so applied
# alone first it could not start (a feature run changes a unit another feature installs only
# when that unit exists; it is restarted then).
FEATURE_PLAYBOOKS = ("cgroup.yml", "apparmor.yml", "seccomp.yml", "namespaces.yml", "fsview.yml", "landlock.yml",
                     "firewall.yml", "sockfilter.yml", "services.yml", "ebpf.yml", "host-prep.yml")
# Checks about what the node's kernel can do for a policy rather than about the policy being in
# place: they pass on a node without it. Their negative controls are elsewhere (test_landlock:
# a strict ruleset the guest's ABI 2 cannot enforce fails `abi`).
KERNEL_PRECONDITIONS = {"vm1::landlock:demo-web::abi"}
DRIFTED = {
    "vm1::slice:web.slice::memory.max",
    "vm1::apparmor:ringzero-demo-enforce::mode",
    "vm1::apparmor:ringzero-demo-enforce::allow:/etc/hostname",
    "vm1::apparmor:ringzero-demo-enforce::deny:/etc/shadow",
}
USER_FILE = "/etc/ringzero/seccomp/user-own.json"


def _ids(node: Node) -> set[str]:
    return {c.id for c in expectations(node.topology)}


def test_the_guests_cloud_config_is_valid_and_root_is_its_only_login(node: Node) -> None:
    """cloud-init's own schema check of the user-data ringzero rendered; no image default user."""
    res = node.guest.run("cloud-init schema --system")
    assert res.returncode == 0 and "Valid cloud-config" in res.stdout, res.stdout + res.stderr
    assert node.guest.run("id debian").returncode != 0, "the image's default user was created"
    assert node.guest.ssh("ls /etc/ssh/ | grep -c '^ssh_host_.*_key$'") == "1"  # only the provided key


def test_site_converges_then_a_second_run_changes_nothing(node: Node) -> None:
    for n in NODES:
        first = node.apply(n)
        assert first.changed == 1 and first.changes, f"{n}: the first run changed nothing"
        second = node.apply(n)
        assert second.changed == 0 and second.changes == [], f"{n}: second run changed {second.changes}"
        print(f"{n}: site.yml {first.seconds} s, then {second.seconds} s (no change)")


def test_check_mode_on_a_converged_node_reports_no_drift(node: Node) -> None:
    for n in NODES:
        assert node.apply(n, check=True).changes == []


def test_compliance_suite_passes_every_declared_check(node: Node) -> None:
    from tests.node_state import unchanged

    with unchanged(node.guest, "the compliance suite on the converged node"):
        counts, results = node.suite("green")
    assert set(results) == _ids(node), "the suite ran other checks than the declaration expands into"
    failed = {k: v for k, v in results.items() if v != "pass"}
    assert not failed, f"failed on a converged node: {counts.failures}"
    assert counts.passed == len(_ids(node)) >= 30


def test_ringzero_check_with_the_manifest_agrees_with_the_suite(node: Node) -> None:
    """The console command judges the declared checks as the testinfra suite does, over one SSH
    connection per node (its active probes ride that connection's ControlMaster)."""
    from tests.node_state import unchanged

    with unchanged(node.guest, "ringzero check --manifest on the converged node"):
        logins = node.guest.ssh_logins()
        rc, results, out = node.check_cli("green")
        # vm1 and vm2 are both this guest: two connections, and the count's own login
        assert node.guest.ssh_logins() == logins + 3
    assert set(results) == _ids(node), out
    assert rc == 0 and set(results.values()) == {"pass"}, out


def test_drift_is_reported_then_repaired(node: Node) -> None:
    node.guest.ssh("apparmor_parser -R /etc/apparmor.d/ringzero-demo-enforce && "
                   "systemctl set-property web.slice MemoryMax=1G")
    drift = node.apply("vm1", check=True).changes
    assert any(c.startswith("apparmor ringzero-demo-enforce") for c in drift), drift
    assert any("web.slice drift: MemoryMax=1073741824 (declared 536870912)" in c for c in drift), drift
    # check mode changed nothing: the suite sees exactly the drift
    from tests.node_state import unchanged

    with unchanged(node.guest, "the compliance suite and ringzero check on the drifted node"):
        _, results = node.suite("drifted")
        rc, cli_results, out = node.check_cli("drifted")
    assert {k for k, v in results.items() if v != "pass"} == DRIFTED
    assert rc == 1 and {k for k, v in cli_results.items() if v != "pass"} == DRIFTED, out
    assert node.apply("vm1").changed == 1
    counts, _ = node.suite("repaired")
    assert counts.failed == counts.errors == 0, counts.failures
    assert node.guest.ssh("cat /sys/fs/cgroup/web.slice/memory.max") == "536870912"


def test_removal_leaves_nothing_of_ringzero_and_keeps_what_it_did_not_create(node: Node) -> None:
    g = node.guest
    g.ssh(f"echo '{{}}' > {USER_FILE}")
    for n in NODES:
        assert node.apply(n, state="absent").changed == 1
        assert node.apply(n, state="absent").changed == 0, f"{n}: a second removal changed something"
    assert node.leftovers() == []
    assert "ringzero-demo" not in g.ssh("cat /sys/kernel/security/apparmor/profiles")
    assert g.ssh("ls /sys/fs/cgroup | grep -E '^(web|batch)' || true") == ""
    assert g.ssh(f"cat {USER_FILE}") == "{}", "a file ringzero did not create was touched"


def _run(node: Node, plan: dict[str, Any], state: str = "present") -> RunResult:
    return run_playbook({**node.guest.node, "name": plan["node"]}, node.guest.private_key,
                        {"ringzero_plan": plan, "ringzero_state": state})


def test_apply_refuses_a_foreign_file_at_a_planned_path_and_changes_nothing(node: Node) -> None:
    g, unit = node.guest, "/etc/systemd/system/ringzero-demo-web.service"
    g.ssh(f"printf '[Service]\\nExecStart=/bin/true\\n' > {unit}")
    r = _run(node, node_plan(node.topology, "vm1"))
    assert not r.ok and any(f"{unit} exists and ringzero did not create it" in f for f in r.failures), r.failures
    assert g.ssh(f"cat {unit}") == "[Service]\nExecStart=/bin/true"
    assert [p for p in node.leftovers() if p.startswith("/")] == [unit], "apply wrote something before refusing"
    g.ssh(f"rm {unit}")


def test_the_ledger_on_a_real_node(node: Node) -> None:
    """Hand edits survive removal (reported), a foreign unit keeps its slice running, and no
    directory ringzero did not create disappears, even an empty drop-in directory."""
    g = node.guest
    g.ssh("rm -r /etc/ringzero")  # what the removal test left: the user's file, kept there
    dropins = "/etc/systemd/system/ringzero-demo-web.service.d"
    g.ssh(f"mkdir {dropins}")  # the admin's own (empty) drop-in directory
    dirs = "/etc/modprobe.d /etc/default/grub.d /etc/apparmor.d /etc/systemd/system " + dropins
    before = g.ssh(f"for d in {dirs}; do [ -d $d ] && echo $d; done").split()
    node.apply("vm1")
    ledger = json.loads(g.ssh("cat /var/lib/ringzero/ledger.json"))
    assert set(ledger["files"]) == set(node_plan(node.topology, "vm1")["files"])
    assert dropins not in ledger["dirs"] and "/etc/ringzero" in ledger["dirs"]
    assert g.ssh("stat -c '%a %U' /var/lib/ringzero /var/lib/ringzero/ledger.json").split() == \
        ["700", "root", "600", "root"]
    seccomp = "/etc/ringzero/seccomp/no-mkdir.json"
    g.ssh(f"echo '{{\"edited\": true}}' > {seccomp}")
    g.ssh("systemd-run --unit=rz-foreign -p Slice=batch.slice sleep infinity")
    r = node.apply("vm1", state="absent")
    assert f"{seccomp}: edited since ringzero wrote it; kept" in r.kept, r.kept
    assert any(k.startswith("batch.slice: left running") and "rz-foreign.service" in k for k in r.kept), r.kept
    assert g.ssh(f"cat {seccomp}") == '{"edited": true}'
    assert g.ssh("systemctl is-active rz-foreign.service batch.slice").split() == ["active", "active"]
    assert g.ssh(f"for d in {dirs}; do [ -d $d ] && echo $d; done").split() == before
    g.ssh(f"systemctl stop rz-foreign.service; rm {seccomp}; rmdir {dropins}")
    # once the foreign unit left, the next removal stops the slice ringzero still owns
    r = node.apply("vm1", state="absent")
    assert r.changes == ["stop batch.slice"], r.changes
    assert node.leftovers() == []
    assert json.loads(g.ssh("cat /var/lib/ringzero/ledger.json"))["units"] == {}


def test_adopt_takes_over_a_unit_and_gives_the_original_back(node: Node) -> None:
    """A unit the admin wrote, adopted by a plan: replaced while declared; on removal its own
    file comes back and it runs again on it (restarted, never stopped or disabled)."""
    g, name = node.guest, "rz-adopted.service"
    path = f"/etc/systemd/system/{name}"
    original = "[Service]\nExecStart=/bin/sleep 1001\n[Install]\nWantedBy=multi-user.target\n"
    g.ssh(f"printf '{original}' > {path} && systemctl daemon-reload && systemctl enable --now {name}")
    ours = "[Service]\nExecStart=/bin/sleep 2002\n[Install]\nWantedBy=multi-user.target\n"
    plan = {"node": "adopter", "apparmor": [], "slices": [], "packages": [], "hooks": [], "module_params": [],
            "files": {path: {"content": ours, "mode": "0644", "feature": "services", "adopt": True}},
            "units": [{"unit": name, "owned": True, "feature": "services", "files": [path], "adopt": True}]}
    main_cmd = f"cat /proc/$(systemctl show -p MainPID --value {name})/cmdline | tr '\\0' ' '"
    refused = _run(node, {**plan, "files": {path: {**plan["files"][path], "adopt": False}}})
    assert not refused.ok and any("ringzero did not create it" in f for f in refused.failures), refused.failures
    r = _run(node, plan)
    assert r.ok, r.failures
    assert g.ssh(main_cmd) == "/bin/sleep 2002"
    r = _run(node, plan, "absent")
    assert r.ok, r.failures
    assert g.ssh(f"cat {path}") == original.strip()
    assert g.ssh(f"systemctl is-active {name}; systemctl is-enabled {name}").split() == ["active", "enabled"]
    assert g.ssh(main_cmd) == "/bin/sleep 1001"
    g.ssh(f"systemctl disable --now {name} && rm {path} && systemctl daemon-reload")


def test_values_systemd_accepts_apply_without_drift_and_check_green(node: Node, tmp_path: Path) -> None:
    """Valid but unusual slice values (CPUWeight=idle, TasksMax=infinity and a percentage,
    MemoryMax as a percentage of the node's memory, a fractional MemoryHigh): accepted at
    preview, applied, no drift in check mode (what the module expects is what systemd 252
    reports), every check of the slice passes, and removal leaves nothing."""
    topo = Topology(hosts=(HostSpec("unusual"),), nodes=(NodePolicies("unusual", slices=(
        SliceSpec("rzidle.slice", cpu_weight="idle", tasks_max="infinity", memory_max="50%", memory_high="256.5M"),
        SliceSpec("rzshare.slice", cpu_weight=50, tasks_max="25%", memory_low="0.5G"),
    )),))
    plan = node_plan(topo, "unusual")
    applied = _run(node, plan)
    assert applied.ok and applied.changes, applied.failures
    g = node.guest
    assert g.ssh("cat /sys/fs/cgroup/rzidle.slice/cpu.idle /sys/fs/cgroup/rzidle.slice/pids.max").split() == \
        ["1", "max"]
    total = int(g.ssh("awk '/MemTotal/ {print $2 * 1024}' /proc/meminfo"))
    assert abs(int(g.ssh("cat /sys/fs/cgroup/rzidle.slice/memory.max")) - total // 2) <= 4096
    drift = run_playbook({**g.node, "name": "unusual"}, g.private_key,
                         {"ringzero_plan": plan, "ringzero_state": "present"}, check=True)
    assert drift.ok and drift.changes == [], drift.changes
    manifest, junit = tmp_path / "unusual.json", tmp_path / "unusual.xml"
    manifest.write_text(json.dumps(to_manifest(topo)))
    res = subprocess.run(
        [sys.executable, "-m", "ringzero.cli", "check", "--manifest", str(manifest), "--hosts", f"unusual={g.url}",
         "-i", str(g.key_file), "--known-hosts", str(g.known_hosts), "--junit", str(junit)],
        capture_output=True, text=True, timeout=600)
    statuses = junit_statuses(junit)
    assert res.returncode == 0 and statuses and set(statuses.values()) == {"pass"}, res.stdout + res.stderr
    assert len(statuses) == len(expectations(topo))
    assert _run(node, plan, "absent").ok
    assert g.ssh("ls /sys/fs/cgroup | grep '^rz' || true") == ""


def test_each_feature_playbook_converges_then_changes_nothing(node: Node) -> None:
    plans = [("vm1", pb) for pb in FEATURE_PLAYBOOKS] + [("vm2", "host-prep.yml")]
    for n, pb in plans:
        first, second = node.apply(n, pb), node.apply(n, pb)
        assert first.changed == 1, f"{pb} on {n}: the first run on a clean node changed nothing"
        assert second.changed == 0 and second.changes == [], f"{pb} on {n}: second run changed {second.changes}"
    # The feature playbooks together converge to exactly what site.yml declares.
    for n in NODES:
        assert node.apply(n).changes == []


def test_every_check_fails_on_a_node_without_the_policies(node: Node) -> None:
    """Negative controls: with the policies removed (and what the image bakes in broken),
    each check of the suite must fail: a check that cannot fail proves nothing."""
    for n in NODES:
        node.apply(n, state="absent")
    node.guest.ssh("dpkg --remove --force-depends xen-system-amd64 qemu-system-x86 libvirt-daemon-system "
                   "libvirt-clients >/dev/null 2>&1; rm -f /boot/xen-*.gz", timeout=300)
    from tests.node_state import unchanged

    with unchanged(node.guest, "the compliance suite and ringzero check on the node without the policies"):
        _, results = node.suite("negative")
        rc, cli_results, out = node.check_cli("negative")
    assert rc != 0 and not [k for k, v in cli_results.items() if v == "pass" and k not in KERNEL_PRECONDITIONS], out
    assert set(results) == _ids(node)
    passing = sorted(k for k, v in results.items() if v == "pass")
    assert set(passing) <= KERNEL_PRECONDITIONS, f"checks that pass on a node without the policy: {passing}"
