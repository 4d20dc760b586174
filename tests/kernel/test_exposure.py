"""The exposure gate on a node: the score planning computed offline is the one the node's own
systemd gives, the declared check passes on the applied node, and its negative control (a
drop-in the test writes that runs the service as root again) fails exactly that check.

Runs against the dev guest with RINGZERO_DEV_GUEST=/tmp/rz-dev, else boots its own.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ringzero.compliance import run_compliance
from ringzero.facts import systemd_security
from ringzero.kinds.service.exposure import exposures
from ringzero.plan import policies_plan
from ringzero.playbook import run_playbook
from ringzero.spec import HostSpec, NodePolicies, SeccompProfileSpec, ServiceSpec, SyscallRule, Topology, to_manifest
from tests.handboot import HandGuest

NODE = "rz-gate"  # its own node name: its own ledger entries beside any other plan on the guest
SERVICE = "rz-gate-web.service"
WEAKEN = f"/etc/systemd/system/{SERVICE}.d/zz-rz-gate-test-weaken.conf"
BASE = ServiceSpec(SERVICE, "/usr/bin/sleep infinity", user="www-data")
SECCOMP = SeccompProfileSpec("rz-gate", default_action="SCMP_ACT_ALLOW",
                             rules=(SyscallRule(("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", "EACCES"),),
                             services=(SERVICE,))


def _policies(limit: float | None) -> NodePolicies:
    return NodePolicies(NODE, services=(replace(BASE, max_exposure=limit),), seccomp=(SECCOMP,))


@dataclass
class Gate:
    guest: HandGuest
    policies: NodePolicies
    offline: float  # the score planning gave
    workdir: Path

    def outcomes(self, name: str) -> dict[str, str]:
        manifest = json.dumps(to_manifest(Topology(hosts=(HostSpec(NODE),), nodes=(self.policies,))))
        v = run_compliance(manifest, [{**self.guest.node, "name": NODE}], self.guest.private_key,
                           str(self.workdir / f"{name}.xml"))
        return dict(v.outcomes)

    def node_score(self) -> float:
        out = self.guest.ssh(f"SYSTEMD_COLORS=0 timeout 60 systemd-analyze security --no-pager -- {SERVICE}")
        return systemd_security(out)[SERVICE].exposure


def _apply(guest: HandGuest, policies: NodePolicies, state: str) -> None:
    plan = policies_plan(policies, HostSpec(NODE))
    r = run_playbook({**guest.node, "name": NODE}, guest.private_key, {"ringzero_plan": plan, "ringzero_state": state})
    assert r.ok, f"{state}: {r.failures}"


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory, shared_guest: HandGuest) -> Iterator[Gate]:
    tmp = tmp_path_factory.mktemp("exposure")
    unbounded = _policies(None)
    offline = exposures(unbounded, policies_plan(unbounded, HostSpec(NODE)))[SERVICE].exposure
    policies = _policies(offline)  # the tightest max the gate lets through
    with contextlib.nullcontext(shared_guest) as guest:  # the tier's shared guest
        guest.ssh(f"rm -f {WEAKEN}")
        _apply(guest, policies, "present")
        try:
            yield Gate(guest, policies, offline, tmp)
        finally:
            guest.run(f"rm -f {WEAKEN}; systemctl daemon-reload", timeout=60)
            _apply(guest, policies, "absent")
            left = guest.run(f"ls /etc/systemd/system/{SERVICE} /etc/ringzero/seccomp/rz-gate.json 2>/dev/null; "
                             f"systemctl is-active {SERVICE}").stdout.split()
            assert left in ([], ["inactive"]), left


def test_the_node_scores_the_unit_as_planning_did(gate: Gate) -> None:
    assert gate.node_score() == gate.offline


def test_the_exposure_check_passes_on_the_applied_node(gate: Gate) -> None:
    outcomes = gate.outcomes("clean")
    assert outcomes[f"{NODE}::service:{SERVICE}::exposure"] == "pass", outcomes
    assert set(outcomes.values()) == {"pass"}, outcomes


def test_a_weakening_drop_in_fails_exactly_the_exposure_check(gate: Gate) -> None:
    gate.guest.ssh(f"printf '[Service]\\nUser=root\\n' > {WEAKEN} && systemctl daemon-reload")
    try:
        assert gate.node_score() > gate.offline
        outcomes = gate.outcomes("weakened")
        failed = {i for i, s in outcomes.items() if s != "pass"}
        assert failed == {f"{NODE}::service:{SERVICE}::exposure"}, outcomes
    finally:
        gate.guest.ssh(f"rm -f {WEAKEN} && systemctl daemon-reload")
    assert gate.node_score() == gate.offline
    assert gate.outcomes("repaired")[f"{NODE}::service:{SERVICE}::exposure"] == "pass"
