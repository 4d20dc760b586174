"""500 declared policies on one real guest, applied in ONE module run: the plan (~380 KiB, more
than Linux takes as one command-line argument) reaches the node as a file, the node holds every
file, unit, slice setting, seccomp filter and AppArmor profile it declares, a second run
changes nothing, and removal leaves nothing behind. The guest is this file's own (see conftest):
the other kernel tests break theirs on purpose at the end."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from ringzero.facts import apparmor_profiles, systemctl_show_units
from ringzero.plan import policies_plan
from ringzero.plan_schema import NodePlan
from ringzero.playbook import RunResult, run_playbook
from ringzero.spec import HostSpec, NodePolicies
from tests.fixtures import local_topology
from tests.handboot import HandGuest
from tests.kernel.conftest import Node
from tests.scale import scale_policies

pytestmark = pytest.mark.kernel

POLICIES = 500
NODE = "vm1"


@pytest.fixture(scope="module")
def node(shared_guest: HandGuest, tmp_path_factory: pytest.TempPathFactory) -> Node:
    """The tier's shared guest (this module removes all it applied)."""
    return Node(shared_guest, local_topology(), tmp_path_factory.mktemp("scale"))


@pytest.fixture(scope="module")
def policies() -> NodePolicies:
    return scale_policies(NODE, POLICIES)


@pytest.fixture(scope="module")
def plan(policies: NodePolicies) -> NodePlan:
    return policies_plan(policies, HostSpec(NODE))


def _run(node: Node, plan: NodePlan, state: str = "present") -> RunResult:
    t0 = time.monotonic()
    r = run_playbook({**node.guest.node, "name": NODE}, node.guest.private_key,
                     {"ringzero_plan": plan, "ringzero_state": state})
    assert r.ok, f"{state}: {r.failures}"
    print(f"{POLICIES} policies, {state}: {time.monotonic() - t0:.1f} s, {len(r.changes)} changes")
    return r


def _hashes(node: Node, paths: list[str]) -> dict[str, str]:
    out = node.guest.ssh("sha256sum -- " + " ".join(paths) + " 2>/dev/null || true", timeout=300)
    return {line.split(None, 1)[1].strip(): line.split(None, 1)[0] for line in out.splitlines() if line.strip()}


def _units(node: Node, units: list[str], props: str) -> dict[str, dict[str, str]]:
    return systemctl_show_units(node.guest.ssh(f"systemctl show -p {props} " + " ".join(units), timeout=300), units)


def test_500_policies_apply_in_one_module_run(node: Node, plan: NodePlan) -> None:
    assert len(plan["files"]) > 500 and len(json.dumps(plan)) > 128 * 1024
    r = _run(node, plan)
    # One task converges the whole plan (site.yml's other task only reports a reboot).
    assert r.changed == 1 and r.changes, r.changes
    assert sum(c.startswith("start rzscale") for c in r.changes) == len(plan["units"]) + len(plan["slices"])


def test_the_guest_holds_every_declared_file_unit_and_profile(node: Node, policies: NodePolicies,
                                                              plan: NodePlan) -> None:
    want = {p: hashlib.sha256(f["content"].encode()).hexdigest() for p, f in plan["files"].items()}
    assert _hashes(node, sorted(want)) == want
    slices = {s["unit"]: s for s in plan["slices"]}
    shown = _units(node, sorted(slices), "ActiveState,UnitFileState," + ",".join(
        sorted({k for s in plan["slices"] for k in s["expect"]})))
    for unit, s in slices.items():
        have = shown[unit]
        assert (have.get("ActiveState"), have.get("UnitFileState")) == ("active", "enabled"), (unit, have)
        assert {k: have.get(k) for k in s["expect"]} == s["expect"], unit
    services = [u for u in plan["units"] if u["owned"]]
    shown = _units(node, [u["unit"] for u in services], "ActiveState,UnitFileState,Slice,SystemCallFilter")
    in_slice = {svc: sl.name for sl in policies.slices for svc in sl.services}
    assert len(in_slice) == len(services) == POLICIES // 20
    for u in services:
        have = shown[u["unit"]]
        assert (have.get("ActiveState"), have.get("UnitFileState")) == ("active", "enabled"), (u["unit"], have)
        assert have.get("Slice") == in_slice.get(u["unit"], "system.slice"), u["unit"]
        assert "mkdir" in have.get("SystemCallFilter", ""), f"{u['unit']}: no seccomp filter"
    loaded = apparmor_profiles(node.guest.ssh("cat /sys/kernel/security/apparmor/profiles"))
    assert {p["name"]: loaded.get(p["name"]) for p in plan["apparmor"]} == {p["name"]: p["mode"]
                                                                           for p in plan["apparmor"]}


def test_a_second_run_changes_nothing(node: Node, plan: NodePlan) -> None:
    r = _run(node, plan)
    assert r.changed == 0 and r.changes == [], r.changes[:20]


def test_removal_leaves_nothing_behind(node: Node, plan: NodePlan) -> None:
    r = _run(node, plan, "absent")
    assert r.kept == [], r.kept
    assert _hashes(node, sorted(plan["files"])) == {}
    services = [u["unit"] for u in plan["units"]]
    shown = _units(node, services, "LoadState")
    assert {u: shown[u].get("LoadState") for u in services} == dict.fromkeys(services, "not-found")
    # systemd loads a slice without any unit file (LoadState stays "loaded"): gone means no
    # file behind it, stopped, and no cgroup
    slices = [s["unit"] for s in plan["slices"]]
    shown = _units(node, slices, "ActiveState,FragmentPath")
    assert {u: (shown[u].get("ActiveState"), shown[u].get("FragmentPath")) for u in slices} == \
        dict.fromkeys(slices, ("inactive", ""))
    assert node.guest.ssh("ls -d /sys/fs/cgroup/rzscale*.slice 2>/dev/null || true") == ""
    loaded = apparmor_profiles(node.guest.ssh("cat /sys/kernel/security/apparmor/profiles"))
    assert not [p["name"] for p in plan["apparmor"] if p["name"] in loaded]
