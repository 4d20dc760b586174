"""ComplianceCheck's provider logic with a fake engine: what it hands `run_checks` (endpoints,
pinned host keys, the key in a private directory only for the run, waivers), the reports it
writes (JUnit, SARIF that validates), its outputs, enforce/refresh, and when it runs again."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pulumi
import pytest

from ringzero import compliance
from ringzero.checks import expectations
from ringzero.checks.base import Check
from ringzero.checks.hosts import Endpoint
from ringzero.checks.run import MachineResult, Outcome, Report, SshOptions, _waive
from ringzero.checks.waivers import Waiver, WaiverError
from ringzero.compliance import ComplianceCheckProvider, Verdict, run_compliance, verdict, waiver_data
from ringzero.spec import to_manifest
from tests.fixtures import junit_statuses, local_topology
from tests.unit.conftest import RecordingMocks

ROOT = Path(__file__).resolve().parents[2]
SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
MANIFEST = json.dumps(to_manifest(local_topology()), sort_keys=True)
NODES = [{"name": n, "host": "127.0.0.1", "port": p, "user": "root", "known_hosts": f"[127.0.0.1]:{p} ssh-ed25519 K{n}",
          "instance": f"{n}-disk"} for n, p in (("vm1", 2201), ("vm2", 2202))]
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----"
BROKEN = "vm1::slice:web.slice::memory.max"
WAIVED = "vm1::apparmor:ringzero-demo-enforce::mode"
WAIVER = {"control": "apparmor:ringzero-demo-enforce::mode", "hosts": ["vm1"],
          "reason": "profile reloaded by hand during the test (OPS-1)", "expires": "2999-12-31"}


class FakeEngine:
    """Stands in for `run_checks`: records what it was given and judges every check `pass`,
    except `fail` (a failure) and what the machine `unread` could not be read for."""

    def __init__(self, fail: tuple[str, ...] = (), unread: str | None = None) -> None:
        self.fail, self.unread = fail, unread
        self.calls: list[dict[str, Any]] = []

    def __call__(self, endpoints: list[Endpoint], checks_for: Any, *, ssh: SshOptions, waivers: list[Waiver],
                 manifest: str, progress: Any, **_: Any) -> Report:
        assert ssh.identity_file and ssh.known_hosts
        key, kh = Path(ssh.identity_file), Path(ssh.known_hosts)
        self.calls.append({
            "urls": [e.url for e in endpoints], "names": [e.name for e in endpoints],
            "key": key.read_text(), "key_mode": stat.S_IMODE(key.stat().st_mode),
            "dir": key.parent, "dir_mode": stat.S_IMODE(key.parent.stat().st_mode),
            "known_hosts": kh.read_text(), "waivers": waivers, "manifest": manifest,
            "checks": {e.name: [c.id for c in checks_for(e)] for e in endpoints},
        })
        today = dt.date(2026, 12, 1)
        machines = []
        for e in endpoints:
            checks: list[Check] = checks_for(e)
            if e.name == self.unread:
                msg = f"cannot connect over SSH to {e.url}: Connection refused"
                machines.append(MachineResult(e, [Outcome(e.name, c, "error", msg) for c in checks], error=msg))
                continue
            outcomes = []
            for c in checks:
                o = Outcome(e.name, c, "fail" if c.id in self.fail else "pass",
                            f"{c.id}: expected this, the node shows that" if c.id in self.fail else "")
                _waive(o, waivers, today)
                outcomes.append(o)
            machines.append(MachineResult(e, outcomes))
        return Report(machines, [], manifest, dt.datetime.now(dt.UTC), 0.5, today, waivers)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr("ringzero.checks.run.run_checks", fake)
    return fake


def test_the_engine_gets_one_pinned_endpoint_per_node_and_the_key_only_for_the_run(
        engine: FakeEngine, tmp_path: Path) -> None:
    v = run_compliance(MANIFEST, NODES, KEY, str(tmp_path / "reports" / "c.xml"))
    (call,) = engine.calls
    assert call["names"] == ["vm1", "vm2"]
    assert call["urls"] == ["ssh://root@127.0.0.1:2201", "ssh://root@127.0.0.1:2202"]
    assert call["known_hosts"] == "[127.0.0.1]:2201 ssh-ed25519 Kvm1\n[127.0.0.1]:2202 ssh-ed25519 Kvm2\n"
    assert call["key"] == KEY + "\n" and call["key_mode"] == 0o600 and call["dir_mode"] == 0o700
    assert call["dir"].name.startswith("ringzero-compliance-") and not call["dir"].exists()
    # the checks are the declaration's, node by node (what `ringzero check --manifest` runs)
    topology = local_topology()
    for n in ("vm1", "vm2"):
        assert call["checks"][n] == [c.id for c in expectations(topology, {n})]
    assert v.passed == len(expectations(topology)) >= 30 and v.failed == v.errors == v.waived == 0
    assert v.failures == [] and v.score == 100.0 and set(v.outcomes.values()) == {"pass"}


def test_reports_are_written_junit_and_sarif_that_validates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.sarif_rules import github_sarif_problems

    monkeypatch.setattr("ringzero.checks.run.run_checks", FakeEngine(fail=(BROKEN, WAIVED)))
    monkeypatch.chdir(tmp_path)
    v = run_compliance(MANIFEST, NODES, KEY, str(tmp_path / "reports" / "stack-compliance.xml"), [WAIVER])
    assert v.report_path.endswith("stack-compliance.xml") and v.sarif_path.endswith("stack-compliance.sarif")
    statuses = junit_statuses(Path(v.report_path))
    assert statuses[("vm1", "slice:web.slice::memory.max")] == "fail"
    assert statuses[("vm1", "apparmor:ringzero-demo-enforce::mode")] == "waived"
    assert statuses[("vm2", "host:kvm::libvirtd")] == "pass"
    doc = json.loads(Path(v.sarif_path).read_text())
    jsonschema.validate(doc, SARIF_SCHEMA)
    assert not github_sarif_problems(doc)
    results = {(r["properties"]["host"], r["ruleId"]): r for r in doc["runs"][0]["results"]}
    assert results[("vm1", "slice:web.slice::memory.max")]["kind"] == "fail"
    assert results[("vm1", "apparmor:ringzero-demo-enforce::mode")]["suppressions"][0]["status"] == "accepted"
    # each result points at its policy's entry in the manifest written beside the reports
    loc = results[("vm1", "slice:web.slice::memory.max")]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "reports/stack-compliance.manifest.json"
    lines = (tmp_path / "reports" / "stack-compliance.manifest.json").read_text().splitlines()
    line = lines[loc["region"]["startLine"] - 1]
    assert '"name": "web.slice"' in line, line
    assert (v.failed, v.waived, v.errors) == (1, 1, 0)
    assert v.failures == [f"{BROKEN}: {BROKEN}: expected this, the node shows that"]
    assert v.outcomes[WAIVED] == "waived" and v.outcomes[BROKEN] == "fail"


def test_a_node_that_cannot_be_read_is_named_once_and_its_checks_are_errors(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("ringzero.checks.run.run_checks", FakeEngine(unread="vm2"))
    v = run_compliance(MANIFEST, NODES, KEY, str(tmp_path / "c.xml"))
    assert v.errors == len(expectations(local_topology(), {"vm2"})) and v.failed == 0
    assert v.failures == ["vm2: cannot connect over SSH to ssh://root@127.0.0.1:2202: Connection refused"]


def test_waivers_from_a_file_or_inline_are_checked_and_become_plain_inputs(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text("waivers:\n  - control: RZ-PTRACE-1\n    hosts: vm1\n    reason: gdb attaches to builds (OPS-42)\n"
                    "    expires: 2027-03-31\n")
    assert waiver_data(str(path), "w") == [{"control": "RZ-PTRACE-1", "hosts": ["vm1"],
                                            "reason": "gdb attaches to builds (OPS-42)", "expires": "2027-03-31"}]
    assert waiver_data([WAIVER], "w") == [WAIVER]
    assert waiver_data(None, "w") == []
    with pytest.raises(WaiverError, match=r"ComplianceCheck 'c': waivers: waiver #1: expires='soon'"):
        waiver_data([{**WAIVER, "expires": "soon"}], "ComplianceCheck 'c': waivers")


def _props(**kw: Any) -> dict[str, Any]:
    return {"name": "compliance", "manifest": MANIFEST, "nodes": NODES, "private_key": KEY, "applied": ["a1", "a2"],
            "enforce": True, "report_path": "/tmp/unused.xml", "waivers": [], **kw}


def _verdict(failed: int = 0, errors: int = 0) -> Verdict:
    failures = [f"vm1::slice:web.slice::memory.max: expected {i}" for i in range(failed + errors)]
    return Verdict(30 - failed - errors, failed, errors, 1, 2, 90.0, failures, {}, ["waiver #3 matched no check"],
                   "/r/c.xml", "/r/c.sarif")


def test_enforce_fails_the_update_naming_the_failures_refresh_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []

    def fake(*args: Any, **kw: Any) -> Verdict:
        seen.append(args)
        return _verdict(failed=2, errors=1)

    monkeypatch.setattr(compliance, "run_compliance", fake)
    p = ComplianceCheckProvider()
    with pytest.raises(RuntimeError) as e:
        p.create(_props(waivers=[WAIVER]))
    msg = str(e.value)
    assert msg.startswith("ComplianceCheck 'compliance': 2 failed, 1 errors of ")
    assert "JUnit: /r/c.xml, SARIF: /r/c.sarif" in msg and "vm1::slice:web.slice::memory.max: expected 2" in msg
    assert seen[0][4] == [WAIVER]
    # refresh checks again and shows the failures in its outputs, never raising
    outs = p.read("compliance", _props()).outs
    assert (outs["passed"], outs["failed"], outs["errors"], outs["waived"], outs["skipped"]) == (27, 2, 1, 1, 2)
    assert outs["failures"][0] == "vm1::slice:web.slice::memory.max: expected 0" and outs["sarif_path"] == "/r/c.sarif"
    assert outs["notes"] == ["waiver #3 matched no check"] and outs["score"] == 90.0
    # not enforced: the update goes through with the failures in its outputs
    assert p.create(_props(enforce=False)).outs["failed"] == 2
    # a state written before waivers existed is read as having none
    old = _props()
    del old["waivers"]
    assert p.read("compliance", old).outs["failed"] == 2 and seen[-1][4] == []


def test_it_runs_again_only_when_what_it_proves_changed() -> None:
    p = ComplianceCheckProvider()
    olds = {**_props(), "passed": 30, "failed": 0}
    assert not p.diff("compliance", olds, _props()).changes
    old_state = {k: v for k, v in olds.items() if k != "waivers"}  # before waivers existed: no new run
    assert not p.diff("compliance", old_state, _props()).changes
    for change in ({"applied": ["a1", "a3"]}, {"manifest": "{}"}, {"waivers": [WAIVER]}, {"enforce": False},
                   {"nodes": NODES[:1]}, {"report_path": "/tmp/other.xml"}):
        d = p.diff("compliance", olds, _props(**change))
        assert d.changes and not d.replaces, change


def test_a_verdict_counts_what_the_engine_judged(tmp_path: Path) -> None:
    check = next(c for c in expectations(local_topology(), {"vm1"}))
    e = Endpoint("vm1", "ssh://root@127.0.0.1:2201")
    w = Waiver(check.control, ("vm1",), "a reason long enough", dt.date(2000, 1, 1), 1)
    outs = [Outcome("vm1", check, "fail", "boom\nsecond line", waiver=w)]
    report = Report([MachineResult(e, outs)], [], None, dt.datetime.now(dt.UTC), 0.1, dt.date(2026, 1, 1), [w])
    v = verdict(report)
    assert (v.passed, v.failed, v.score) == (0, 1, 0.0)
    assert v.failures == [f"{check.id}: boom"]
    assert v.notes == [f"{check.id}: waiver #1 expired on 2000-01-01: the failure counts"]


def test_a_bad_waiver_fails_the_program_naming_it(mocks: RecordingMocks) -> None:
    with pytest.raises(pulumi.RunError, match=r"ComplianceCheck 'compliance': .*waiver #1: missing expires"):
        compliance.ComplianceCheck("compliance", manifest=MANIFEST, nodes=NODES, private_key=KEY,
                                   waivers=[{k: v for k, v in WAIVER.items() if k != "expires"}])

