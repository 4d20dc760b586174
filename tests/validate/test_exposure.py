"""The exposure gate with this machine's real `systemd-analyze security --offline` (systemd 252):
scores come from the whole unit a node gets (every kind's drop-ins), a score above max_exposure
refuses the plan (`ringzero plan` and the Pulumi program alike) with node, service, score, max
and offenders, and a score at the max plans."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from ringzero.kinds.service import exposure
from ringzero.plan import node_plan, policies_plan
from ringzero.spec import HostSpec, NodePolicies, SeccompProfileSpec, ServiceSpec, SpecError, SyscallRule, to_manifest
from tests.fixtures import local_topology
from tests.unit.conftest import RecordingMocks

WEB = ServiceSpec("rz-gate.service", "/usr/bin/sleep infinity", user="nobody")
SECCOMP = SeccompProfileSpec("rz-gate", default_action="SCMP_ACT_ALLOW",
                             rules=(SyscallRule(("mkdir",), "SCMP_ACT_ERRNO", "EACCES"),), services=(WEB.name,))


def _score(policies: NodePolicies) -> float:
    plan = policies_plan(policies, HostSpec(policies.node))
    return exposure.exposures(policies, plan)[WEB.name].exposure


def _with_max(limit: float, *, seccomp: bool = True) -> NodePolicies:
    return NodePolicies("vm1", services=(dataclasses.replace(WEB, max_exposure=limit),),
                        seccomp=(SECCOMP,) if seccomp else ())


def test_the_score_counts_the_drop_ins_other_kinds_write() -> None:
    bare, filtered = _score(NodePolicies("vm1", services=(WEB,))), _score(NodePolicies("vm1", services=(WEB,),
                                                                                         seccomp=(SECCOMP,)))
    # systemd 252 weighs SystemCallFilter= and SystemCallArchitectures=native: the seccomp drop-in lowers it
    assert 0 < filtered < bare <= 10, (filtered, bare)


def test_any_drop_in_under_etc_systemd_system_counts_whoever_renders_it() -> None:
    unit = policies_plan(NodePolicies("vm1", services=(WEB,)), HostSpec("vm1"))["files"]
    files = {p: f["content"] for p, f in unit.items()}
    alone = exposure.score(files, (WEB.name,))[WEB.name]
    net = {**files, f"/etc/systemd/system/{WEB.name}.d/ringzero-netpolicy-x.conf": "[Service]\nPrivateNetwork=yes\n"}
    for_all = {**files, "/etc/systemd/system/service.d/ringzero-fsview-x.conf": "[Service]\nPrivateNetwork=yes\n"}
    netted, everywhere = exposure.score(net, (WEB.name,))[WEB.name], exposure.score(for_all, (WEB.name,))[WEB.name]
    assert netted.exposure < alone.exposure and everywhere.exposure == netted.exposure
    assert "PrivateNetwork=" in {n for n, _v, _d in alone.offending}
    assert "PrivateNetwork=" not in {n for n, _v, _d in netted.offending}


def test_a_score_above_max_exposure_is_refused_and_one_at_it_plans() -> None:
    score = _score(_with_max(10.0))
    policies_plan(_with_max(score), HostSpec("vm1"))  # at the max: planned
    with pytest.raises(SpecError) as e:
        policies_plan(_with_max(round(score - 0.1, 1)), HostSpec("vm1"))
    msg = str(e.value)
    for part in (f"Service '{WEB.name}'", f"max_exposure={round(score - 0.1, 1)}", "node 'vm1'",
                 f"scores {score} ", "1 drop-in(s)", "systemd 252", "what adds most: PrivateNetwork= 0.5"):
        assert part in msg, (part, msg)
    # without the seccomp drop-in the same max is too low: the drop-in is what made it pass
    with pytest.raises(SpecError, match="0 drop-in"):
        policies_plan(_with_max(score, seccomp=False), HostSpec("vm1"))


def _refusing_topology(tmp_path: Path) -> tuple[Path, float]:
    topology = local_topology()
    plan = node_plan(topology, "vm1")
    vm1 = next(n for n in topology.nodes if n.node == "vm1")
    (svc,) = vm1.services
    score = exposure.exposures(vm1, plan)[svc.name].exposure
    doc = to_manifest(topology)
    (node,) = [n for n in doc["nodes"] if n["node"] == "vm1"]
    node["services"][0]["max_exposure"] = round(score - 0.5, 1)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(doc))
    return path, score


def test_ringzero_plan_refuses_in_one_line(tmp_path: Path) -> None:
    manifest, score = _refusing_topology(tmp_path)
    res = subprocess.run([sys.executable, "-m", "ringzero.cli", "plan", "--manifest", str(manifest), "--node", "vm1"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert "Traceback" not in out and "Service 'ringzero-demo-web.service'" in out and f"scores {score}" in out


def test_the_pulumi_program_fails_with_the_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ringzero.spec import from_manifest
    from ringzero.stack import deploy

    manifest, score = _refusing_topology(tmp_path)
    monkeypatch.setenv("RINGZERO_CACHE", str(tmp_path / "cache"))
    pulumi.runtime.set_mocks(RecordingMocks(), project="ringzero", stack="validate", preview=True)
    with pytest.raises(pulumi.RunError, match=rf"Service 'ringzero-demo-web.service'.*node 'vm1'.*scores {score}"):
        deploy(from_manifest(json.loads(manifest.read_text())))


def test_the_reference_stack_outputs_each_service_score() -> None:
    topology = local_topology()
    vm1 = next(n for n in topology.nodes if n.node == "vm1")
    scores = exposure.exposures(vm1, node_plan(topology, "vm1"))
    assert set(scores) == {"ringzero-demo-web.service"} and 0 < scores["ringzero-demo-web.service"].exposure <= 10
