"""Playbooks and compliance suite on one real guest: converge, idempotence, drift, removal,
and negative controls. Tests run in order and share the guest (see conftest)."""

from __future__ import annotations

import pytest

from ringzero.checks import expectations
from tests.kernel.conftest import NODES, Node

pytestmark = pytest.mark.kernel

FEATURE_PLAYBOOKS = ("services.yml", "cgroup.yml", "apparmor.yml", "seccomp.yml", "ebpf.yml", "host-prep.yml")
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
    failed = {k: v for k, v in results.items() if v != "passed"}
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
    assert {k for k, v in results.items() if v != "passed"} == DRIFTED
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
    assert rc != 0 and not [k for k, v in cli_results.items() if v == "pass"], out
    assert set(results) == _ids(node)
    passing = sorted(k for k, v in results.items() if v == "passed")
    assert passing == [], f"checks that pass on a node without the policy: {passing}"
