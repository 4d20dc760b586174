"""`ringzero check` without machines: the catalogue, each control against a probed state, waivers,
the three reports (SARIF validated against the OASIS schema), the command line's exit codes,
`ringzero manifest --program` and `ringzero render`. The check tier runs it on real machines."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ringzero.artifacts import artifacts
from ringzero.checks.baseline import CATALOGUE, CatalogueError, baseline_checks, load_catalogue, parse_catalogue
from ringzero.checks.hosts import Endpoint, inventory_endpoints, parse_endpoints
from ringzero.checks.probe import Probe
from ringzero.checks.report import html, junit, sarif, summary
from ringzero.checks.run import MachineResult, Outcome, Report, _waive
from ringzero.checks.run import judge as judge_check
from ringzero.checks.waivers import WaiverError, parse_waivers
from ringzero.cli import main
from ringzero.spec import from_data, to_manifest
from tests.fixtures import local_config, local_topology

ROOT = Path(__file__).resolve().parents[2]
SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())

# A compliant KVM host as the probe reads it.
GOOD: dict[str, str | None] = {
    "fstype:/sys/fs/cgroup": "cgroup2fs",
    "file:/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc",
    "file:/sys/module/apparmor/parameters/enabled": "Y",
    "file:/sys/kernel/security/apparmor/profiles": "libvirtd (enforce)\nlsb_release (enforce)",
    "file:/proc/sys/kernel/seccomp/actions_avail": "kill_process kill_thread trap errno user_notif trace log allow",
    "file:/proc/sys/kernel/unprivileged_bpf_disabled": "2",
    "file:/proc/sys/kernel/yama/ptrace_scope": "1",
    "file:/proc/sys/kernel/unprivileged_userns_clone": "0",
    "file:/proc/sys/user/max_user_namespaces": "3664",
    "file:/proc/sys/kernel/apparmor_restrict_unprivileged_userns": None,
    "stat:/dev/kvm": "660 root kvm",
    "file:/sys/module/kvm_intel/parameters/nested": None,
    "file:/sys/module/kvm_amd/parameters/nested": "0",
    "file:/etc/libvirt/qemu.conf": '#security_driver = "selinux"\nsecurity_driver = "apparmor"\n',
    "file:/sys/kernel/security/lsm": "lockdown,capability,landlock,yama,apparmor,tomoyo,bpf",  # Debian 12's
}
# Each control's negative control: the reads of a node where exactly that control is broken.
BROKEN: dict[str, dict[str, str | None]] = {
    "RZ-CGROUP-1": {"fstype:/sys/fs/cgroup": "tmpfs"},
    "RZ-CGROUP-2": {"file:/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb rdma misc"},
    "RZ-APPARMOR-1": {"file:/sys/module/apparmor/parameters/enabled": "N"},
    "RZ-APPARMOR-2": {"file:/sys/kernel/security/apparmor/profiles": "libvirtd (enforce)\nlsb_release (complain)"},
    "RZ-SECCOMP-1": {"file:/proc/sys/kernel/seccomp/actions_avail": None},
    "RZ-BPF-1": {"file:/proc/sys/kernel/unprivileged_bpf_disabled": "0"},
    "RZ-PTRACE-1": {"file:/proc/sys/kernel/yama/ptrace_scope": "0"},
    "RZ-USERNS-1": {"file:/proc/sys/kernel/unprivileged_userns_clone": "1"},
    "RZ-LANDLOCK-1": {"file:/sys/kernel/security/lsm": "lockdown,capability,yama,apparmor,tomoyo,bpf"},
    "RZ-BPFLSM-1": {"file:/sys/kernel/security/lsm": "lockdown,capability,landlock,yama,apparmor,tomoyo"},
    "RZ-KVM-1": {"stat:/dev/kvm": "666 root kvm"},
    "RZ-KVM-2": {"file:/sys/module/kvm_amd/parameters/nested": "1"},
    "RZ-LIBVIRT-1": {"file:/etc/libvirt/qemu.conf": 'security_driver = "none"\n'},
}


def probe(values: dict[str, str | None]) -> Probe:
    p = Probe(host=None, name="n1")  # type: ignore[arg-type]
    p.values = dict(values)
    return p


def judge(values: dict[str, str | None], baseline: str = "isolation", **params: str) -> dict[str, tuple[str, str]]:
    cat = load_catalogue()
    b = cat.baseline(baseline)
    p = {k: v.default for k, v in b.params.items()} | params
    checks = baseline_checks("n1", b, p)
    node, memo = probe(values), {}
    siblings = {c.control: c for c in checks}
    return {c.aspect: judge_check(c, node, siblings, memo) for c in checks}


def failing(result: dict[str, tuple[str, str]]) -> set[str]:
    return {k for k, (s, _) in result.items() if s == "fail"}


# ---- the catalogue ------------------------------------------------------------------------
def test_catalogue_controls_are_complete_data() -> None:
    cat = load_catalogue()
    assert list(cat.baselines) == ["isolation", "isolation-hypervisor"]
    assert len(cat.controls) == 13
    for c in cat.controls.values():
        assert c.title and c.rationale and c.impact in ("low", "medium", "high", "critical"), c.id
        assert c.reads(), c.id
    # every issue topic has its control
    topics = " ".join(c.title + " " + " ".join(c.reads()) for c in cat.controls.values())
    for topic in ("cgroup v2", "pids", "AppArmor is enabled", "enforced", "seccomp", "unprivileged_bpf_disabled",
                  "ptrace_scope", "user namespaces", "/dev/kvm", "nested", "security driver"):
        assert topic in topics, topic


def test_every_control_has_a_negative_control() -> None:
    assert set(BROKEN) == set(load_catalogue().controls)


def test_compliant_node_passes_every_control() -> None:
    result = judge(GOOD)
    assert {k: s for k, (s, _) in result.items()} == dict.fromkeys(BROKEN, "pass")


@pytest.mark.parametrize("control", sorted(BROKEN))
def test_a_broken_control_fails_alone(control: str) -> None:
    result = judge(GOOD | BROKEN[control])
    assert failing(result) == {control}, result
    message = result[control][1]
    assert message and ("expected" in message or "offending" in message or "does not exist" in message), message
    dependents = {c.id for c in load_catalogue().controls.values() if control in c.requires}
    assert {k for k, (s, _) in result.items() if s == "skipped"} == dependents


def test_messages_say_what_the_node_shows() -> None:
    r = judge(GOOD | BROKEN["RZ-PTRACE-1"])["RZ-PTRACE-1"][1]
    assert "/proc/sys/kernel/yama/ptrace_scope is '0', expected at least 1" in r
    r = judge(GOOD | BROKEN["RZ-APPARMOR-2"])["RZ-APPARMOR-2"][1]
    assert "lsb_release (complain)" in r and "libvirtd" not in r
    r = judge(GOOD | BROKEN["RZ-CGROUP-2"])["RZ-CGROUP-2"][1]
    assert "missing: pids" in r


def test_hypervisor_controls_apply_where_the_node_is_one() -> None:
    guest = GOOD | {"stat:/dev/kvm": None, "file:/sys/module/kvm_amd/parameters/nested": None,
                    "file:/etc/libvirt/qemu.conf": None}
    result = judge(guest)
    assert {k for k, (s, _) in result.items() if s == "n/a"} == {"RZ-KVM-1", "RZ-KVM-2", "RZ-LIBVIRT-1"}
    assert "does not exist" in result["RZ-KVM-1"][1]
    # a baseline for hypervisors: the same node fails them instead
    assert failing(judge(guest, "isolation-hypervisor")) == {"RZ-KVM-1", "RZ-KVM-2", "RZ-LIBVIRT-1"}


def test_nested_virtualization_as_declared() -> None:
    on = GOOD | {"file:/sys/module/kvm_amd/parameters/nested": "1"}
    assert "RZ-KVM-2" not in failing(judge(on, nested="on"))
    assert failing(judge(GOOD, nested="on")) == {"RZ-KVM-2"}
    intel = GOOD | {"file:/sys/module/kvm_amd/parameters/nested": None,
                    "file:/sys/module/kvm_intel/parameters/nested": "Y"}
    assert failing(judge(intel)) == {"RZ-KVM-2"} and not failing(judge(intel, nested="on"))


def test_userns_any_knob_restricts() -> None:
    open_ = GOOD | {"file:/proc/sys/kernel/unprivileged_userns_clone": None}
    assert failing(judge(open_)) == {"RZ-USERNS-1"}
    assert not failing(judge(open_ | {"file:/proc/sys/user/max_user_namespaces": "0"}))
    assert not failing(judge(open_ | {"file:/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"}))


def _catalogue() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CATALOGUE.read_text())
    return data


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["controls"][0].pop("rationale"), "'rationale' is a required property"),
    (lambda d: d["controls"][0].update(impact="severe"), "controls/0/impact"),
    (lambda d: d["controls"][0].update(expect={"read": "file:/x", "equals": "a", "one_of": ["b"]}),
     "needs exactly one of"),
    (lambda d: d["controls"][0].update(expect={"read": "file:/x", "matches": "("}), "not a regular expression"),
    (lambda d: d["controls"][0].update(expect={"read": "file:/x", "equals": "${nope}"}), "${nope} is used"),
    (lambda d: d["controls"][0].update(requires=["RZ-KVM-1"]), "must be a control declared before it"),
    (lambda d: d["controls"].append(dict(d["controls"][0])), "declared twice"),
    (lambda d: d["baselines"]["isolation"].update(controls=["RZ-NOPE-1"]), "unknown controls RZ-NOPE-1"),
    (lambda d: d["controls"][0]["expect"].update(read="shell:rm -rf /"), "controls/0/expect"),
])
def test_catalogue_errors_are_named(change: Any, message: str) -> None:
    data = _catalogue()
    change(data)
    with pytest.raises(CatalogueError, match=re.escape(message)):
        parse_catalogue(data)


# ---- waivers ---------------------------------------------------------------------------------
TODAY = dt.date(2026, 11, 27)


@pytest.mark.parametrize(("entry", "message"), [
    ({"control": "RZ-BPF-1", "hosts": "*", "expires": "2027-01-01"}, "missing reason"),
    ({"control": "RZ-BPF-1", "hosts": "*", "reason": "legacy tracing agent", "expires": "next year"},
     "expires='next year'; allowed: a date, YYYY-MM-DD"),
    ({"control": "RZ-BPF-1", "hosts": [], "reason": "legacy tracing agent", "expires": "2027-01-01"}, "hosts=[]"),
    ({"control": "RZ-BPF-1", "hosts": "*", "reason": "because", "expires": "2027-01-01"}, "at least 10 characters"),
    ({"control": "RZ-BPF-1", "hosts": "*", "reason": "legacy tracing agent", "expires": "2027-01-01", "by": "me"},
     "unknown field(s) by"),
])
def test_waiver_errors_name_the_waiver_and_field(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(WaiverError, match=re.escape("w.yaml: waiver #1: ") + ".*" + re.escape(message)):
        parse_waivers({"waivers": [entry]}, "w.yaml")


def _outcome(control: str, node: str, status: str, message: str = "it fails") -> Outcome:
    check = next(c for c in baseline_checks(node, load_catalogue().baseline("isolation"), {"nested": "off"})
                 if c.aspect == control)
    return Outcome(node, check, status, message)


def test_waivers_active_expired_and_patterns() -> None:
    waivers = parse_waivers({"waivers": [
        {"control": "RZ-PTRACE-1", "hosts": ["build-*"], "reason": "gdb attaches to builds", "expires": "2026-12-31"},
        {"control": "RZ-KVM-*", "hosts": "lab1", "reason": "lab machine, shared kvm", "expires": dt.date(2026, 11, 1)},
    ]})
    active = _outcome("RZ-PTRACE-1", "build-7", "fail")
    _waive(active, waivers, TODAY)
    assert active.status == "waived" and "gdb attaches to builds" in active.message and "it fails" in active.message
    elsewhere = _outcome("RZ-PTRACE-1", "web-1", "fail")
    _waive(elsewhere, waivers, TODAY)
    assert elsewhere.status == "fail" and elsewhere.waiver is None
    expired = _outcome("RZ-KVM-1", "lab1", "fail")
    _waive(expired, waivers, TODAY)
    assert expired.status == "fail" and expired.waiver_expired and "expired on 2026-11-01" in expired.message
    last_day = _outcome("RZ-PTRACE-1", "build-1", "fail")
    _waive(last_day, waivers, dt.date(2026, 12, 31))
    assert last_day.status == "waived"
    passing = _outcome("RZ-PTRACE-1", "build-2", "pass", "")
    _waive(passing, waivers, TODAY)
    assert passing.status == "pass"


# ---- reports ------------------------------------------------------------------------------------
def _report() -> Report:
    waivers = parse_waivers({"waivers": [
        {"control": "RZ-PTRACE-1", "hosts": "a", "reason": "gdb attaches to builds", "expires": "2027-01-31"},
        {"control": "RZ-USERNS-1", "hosts": "a", "reason": "rootless podman, moving", "expires": "2026-01-31"},
        {"control": "RZ-BPF-1", "hosts": "zzz", "reason": "matches no host at all", "expires": "2027-01-31"},
    ]})
    machines = []
    for name, values in (("a", GOOD | BROKEN["RZ-PTRACE-1"] | BROKEN["RZ-USERNS-1"] | BROKEN["RZ-CGROUP-1"]),
                         ("b", GOOD | {"stat:/dev/kvm": None})):
        m = MachineResult(Endpoint(name, f"ssh://root@{name}.example:22"))
        checks = baseline_checks(name, load_catalogue().baseline("isolation"), {"nested": "off"})
        node, memo, siblings = probe(values), {}, {c.control: c for c in checks}
        for c in checks:
            status, message = judge_check(c, node, siblings, memo)
            o = Outcome(name, c, status, message)
            _waive(o, waivers, TODAY)
            m.outcomes.append(o)
        machines.append(m)
    broken = MachineResult(Endpoint("c", "ssh://root@c.example:22"), error="cannot connect over SSH: refused")
    broken.outcomes = [Outcome("c", o.check, "error", broken.error or "") for o in machines[1].outcomes]
    machines.append(broken)
    return Report(machines, ["isolation"], None, dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC), 3.5, TODAY, waivers)


def test_report_statuses() -> None:
    r = _report()
    a = {o.check.control: o.status for o in r.machines[0].outcomes}
    assert a["RZ-PTRACE-1"] == "waived" and a["RZ-USERNS-1"] == "fail" and a["RZ-CGROUP-1"] == "fail"
    assert a["RZ-CGROUP-2"] == "skipped"
    assert {o.check.control for o in r.expired_waivers} == {"RZ-USERNS-1"}
    assert [w.control for w in r.unused_waivers] == ["RZ-BPF-1"]
    assert r.exit_code == 2  # a machine could not be read
    r.machines.pop()
    assert r.exit_code == 1
    text = summary(r)
    assert "EXPIRED a  RZ-USERNS-1" in text and "waiver #3" in text and re.search(r"score \d+%", text)


def test_junit_parses_back() -> None:
    r = _report()
    root = ET.fromstring(junit(r))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["a", "b", "c"]
    a = suites["a"]
    assert (a.get("tests"), a.get("failures"), a.get("errors"), a.get("skipped")) == (str(len(BROKEN)), "2", "0", "2")
    cases = {c.get("name"): c for c in a.iter("testcase")}
    assert cases["RZ-USERNS-1"].find("failure") is not None
    assert "expired on 2026-01-31" in (cases["RZ-USERNS-1"].find("failure").get("message") or "")  # type: ignore[union-attr]
    assert cases["RZ-PTRACE-1"].find("skipped").get("type") == "waived"  # type: ignore[union-attr]
    assert cases["RZ-BPF-1"].find("failure") is None and cases["RZ-BPF-1"].find("skipped") is None
    assert suites["c"].get("errors") == str(len(BROKEN))
    assert root.get("tests") == str(3 * len(BROKEN))


def test_sarif_is_valid_2_1_0() -> None:
    doc = sarif(_report())
    jsonschema.Draft4Validator.check_schema(SARIF_SCHEMA)
    errors = list(jsonschema.Draft4Validator(SARIF_SCHEMA).iter_errors(doc))
    assert not errors, [e.message for e in errors[:5]]
    run = doc["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rules == list(BROKEN)
    by = {(x["properties"]["host"], x["ruleId"]): x for x in run["results"]}
    assert by[("a", "RZ-USERNS-1")]["kind"] == "fail" and by[("a", "RZ-USERNS-1")]["level"] == "warning"
    assert by[("a", "RZ-CGROUP-1")]["level"] == "error"
    assert by[("a", "RZ-PTRACE-1")]["suppressions"][0]["justification"].startswith("gdb attaches to builds")
    assert by[("b", "RZ-KVM-1")]["kind"] == "notApplicable" and by[("b", "RZ-KVM-1")]["level"] == "none"
    assert by[("c", "RZ-BPF-1")]["kind"] == "open"
    assert run["invocations"][0]["executionSuccessful"] is False
    assert rules[by[("a", "RZ-KVM-1")]["ruleIndex"]] == "RZ-KVM-1"
    # the schema is not a rubber stamp: a broken document fails it
    doc["runs"][0]["results"][0]["kind"] = "broken"
    assert list(jsonschema.Draft4Validator(SARIF_SCHEMA).iter_errors(doc))


def _resolve(run: dict[str, Any], artifact: dict[str, Any]) -> Path:
    base = run["originalUriBaseIds"][artifact["uriBaseId"]]["uri"] if "uriBaseId" in artifact else ""
    uri = base + artifact["uri"]
    assert uri.startswith("file:///"), uri
    return Path(uri.removeprefix("file://"))


def test_sarif_meets_githubs_upload_rules() -> None:
    """GitHub code scanning rejects a file whose results have no physical location: each result
    points at the line that declared it, and passes every rule GitHub documents (tests/sarif_rules.py)."""
    from tests.sarif_rules import github_sarif_problems

    doc = sarif(_report())
    assert not github_sarif_problems(doc)
    run = doc["runs"][0]
    for res in run["results"]:  # a baseline control: its catalogue entry, at its `id:` line
        loc = res["locations"][0]["physicalLocation"]
        path = _resolve(run, loc["artifactLocation"])
        assert path == CATALOGUE.resolve()
        assert path.read_text().splitlines()[loc["region"]["startLine"] - 1].strip() == f"- id: {res['ruleId']}"
        assert res["locations"][0]["logicalLocations"][0]["name"] == res["properties"]["host"]
    # stable: the same host and control give the same fingerprint in another run; different ones differ
    again = sarif(_report())["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in again] == [r["partialFingerprints"] for r in run["results"]]
    prints = {r["partialFingerprints"]["primaryLocationLineHash"] for r in run["results"]}
    assert len(prints) == len(run["results"]) == 3 * len(BROKEN)
    # the rules are not a rubber stamp: the logical-only locations GitHub refused are caught
    for res in run["results"]:
        res["locations"][0].pop("physicalLocation")
    assert any("physicalLocation.artifactLocation.uri is required" in p for p in github_sarif_problems(doc))


def test_sarif_locates_declared_checks_in_the_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ringzero.checks import expectations
    from ringzero.kinds import registry
    from tests.sarif_rules import github_sarif_problems

    monkeypatch.chdir(tmp_path)
    topology = local_topology()
    Path("manifest.json").write_text(json.dumps(to_manifest(topology), indent=2, sort_keys=True) + "\n")
    m = MachineResult(Endpoint("vm1", "ssh://root@vm1.example:22"))
    checks = expectations(topology, {"vm1"})
    m.outcomes = [Outcome("vm1", c, "fail", "it differs") for c in checks]
    report = Report([m], [], "manifest.json", dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC), 1.0, TODAY)
    doc = sarif(report)
    assert not github_sarif_problems(doc)
    assert not list(jsonschema.Draft4Validator(SARIF_SCHEMA).iter_errors(doc))
    run = doc["runs"][0]
    lines = Path("manifest.json").read_text().splitlines()
    kinds = set()
    for res, c in zip(run["results"], checks, strict=True):
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"] == {"uri": "manifest.json", "uriBaseId": "%SRCROOT%"}
        line = lines[loc["region"]["startLine"] - 1]
        kind, _, name = c.subject.partition(":")
        kinds.add(kind)
        if kind == "host":
            assert '"host_prep"' in line, (c.id, line)
        else:  # the `"name": ...` line of the policy, inside the node's entry
            assert line.strip().rstrip(",") == f'"name": {json.dumps(name)}', (c.id, line)
    # every kind but host preparation (the `host_prep` line) is located at its own entry
    assert kinds == {k.name for k in registry() if k.name != "hostprep"} | {"host"}, kinds
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"


def test_sarif_stays_within_githubs_result_limit() -> None:
    """GitHub rejects a run of more than 25,000 results: findings are kept, passes left out, and said."""
    from tests.sarif_rules import MAX_RESULTS, github_sarif_problems

    checks = baseline_checks("n", load_catalogue().baseline("isolation"), {"nested": "off"})
    machines = []
    for i in range(2400):  # 2,400 x len(checks) results
        m = MachineResult(Endpoint(f"h{i}", f"ssh://root@h{i}.example:22"))
        m.outcomes = [Outcome(f"h{i}", c, "fail" if i % 100 == 0 else "pass", "x") for c in checks]
        machines.append(m)
    report = Report(machines, ["isolation"], None, dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC), 1.0, TODAY)
    doc = sarif(report)
    results = doc["runs"][0]["results"]
    assert len(results) == MAX_RESULTS
    assert sum(r["kind"] == "fail" for r in results) == 24 * len(checks)  # every failure kept
    assert doc["runs"][0]["properties"]["omittedResults"] == 2400 * len(checks) - MAX_RESULTS
    notes = doc["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    total = 2400 * len(checks)
    assert any(f"{total - MAX_RESULTS} of {total} results left out" in n["message"]["text"] for n in notes)
    assert not github_sarif_problems(doc)


def test_sarif_of_a_real_run_meets_githubs_rules(tmp_path: Path) -> None:
    from tests.sarif_rules import github_sarif_problems

    out = tmp_path / "local.sarif"
    assert main(["check", "--hosts", "local://", "--baseline", "isolation", "--quiet", "--sarif", str(out)]) in (0, 1)
    doc = json.loads(out.read_text())
    assert not list(jsonschema.Draft4Validator(SARIF_SCHEMA).iter_errors(doc))
    assert not github_sarif_problems(doc)


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.cells: list[tuple[str, str]] = []
        self.columns: list[str] = []
        self.external: list[str] = []
        self.in_matrix = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.in_matrix = a.get("id") == "matrix"
        if tag in ("script", "link", "img", "iframe") or (a.get("src") or "").startswith("http"):
            self.external.append(tag)
        if not self.in_matrix:
            return
        if tag == "tr" and a.get("data-host"):
            self.rows.append(a["data-host"] or "")
        if tag == "th" and a.get("data-control"):
            self.columns.append(a["data-control"] or "")
        if tag == "td":
            self.cells.append((a.get("data-control") or "", a.get("data-status") or ""))


def test_html_matrix_one_row_per_host_one_column_per_control() -> None:
    page = html(_report())
    cells = _Cells()
    cells.feed(page)
    assert cells.rows == ["a", "b", "c"] and cells.columns == list(BROKEN)
    assert len(cells.cells) == 3 * len(BROKEN) and not cells.external
    statuses = [s for _, s in cells.cells]
    assert statuses.count("fail") == 2 and statuses.count("waived") == 1 and statuses.count("error") == len(BROKEN)
    assert statuses.count("n/a") == 1 and statuses.count("skipped") == 1
    assert "waiver expired 2026-01-31" in page and "matches no host at all" in page
    assert "<script" not in page and '<td class="fail" data-status="fail"' in page


# ---- hosts and the command line ---------------------------------------------------------------
def test_endpoints() -> None:
    got = parse_endpoints("ssh://root@10.0.0.5:22,db=ssh://ops@db.example:2222,local://")
    assert [(e.name, e.url) for e in got] == [("10.0.0.5", "ssh://root@10.0.0.5:22"),
                                              ("db", "ssh://ops@db.example:2222"), ("local", "local://")]
    assert parse_endpoints("ssh://127.0.0.1:2201", ["vm1"])[0].name == "vm1"
    with pytest.raises(ValueError, match="not a node of the manifest"):
        parse_endpoints("x=ssh://127.0.0.1:2201", ["vm1"])
    with pytest.raises(ValueError, match="named twice"):
        parse_endpoints("local://,local://")
    with pytest.raises(ValueError, match="expected"):
        parse_endpoints("http://example.com")


def test_endpoints_accept_dotted_and_directory_user_names() -> None:
    got = parse_endpoints("a=ssh://john.doe@10.0.0.5,b=ssh://svc_ci-2@h.example:2200,c=ssh://HOST$@h2")
    assert [e.url for e in got] == ["ssh://john.doe@10.0.0.5:22", "ssh://svc_ci-2@h.example:2200",
                                    "ssh://HOST$@h2:22"]
    for bad in ("ssh://-o@h", "ssh://a b@h", "ssh://.@h;rm", "ssh://u@h:port"):
        with pytest.raises(ValueError, match="expected"):
            parse_endpoints(bad)


def test_inventory(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text("[hypervisors]\nkvm1 ansible_host=127.0.0.1 ansible_port=2251 ansible_user=ops "
                   "ansible_ssh_private_key_file=/keys/kvm1\nkvm2.example\n[me]\nself ansible_connection=local\n")
    got = inventory_endpoints(str(inv))
    # no ansible_user/ansible_port: ssh decides (your SSH config, else your login and 22), as with Ansible
    assert [(e.name, e.url, e.identity_file) for e in got] == [
        ("kvm1", "ssh://ops@127.0.0.1:2251", "/keys/kvm1"), ("kvm2.example", "ssh://kvm2.example", None),
        ("self", "local://", None)]
    assert [e.name for e in inventory_endpoints(str(inv), "me")] == ["self"]


# Every way an inventory sets a connection, resolved by Ansible: inline host variables,
# [group:vars], group_vars/ and host_vars/ directories (a host's own value beats its group's),
# a child group's variables, become, ssh common and extra args with ProxyJump, a local
# connection, a dotted user name, a template, an IPv6 address.
INVENTORY = """
[hypervisors]
kvm1 ansible_host=10.0.0.6
kvm2 ansible_host=10.0.0.7 ansible_user=john.doe
kvm3 ansible_host=fd00::7

[hypervisors:vars]
ansible_user=ops
ansible_port=2222

[dmz]
web1 ansible_host="{{ dmz_prefix }}.9"
web2 ansible_host=10.1.0.10 ansible_ssh_extra_args='-o ServerAliveInterval=7'

[edge:children]
dmz

[me]
self ansible_connection=local ansible_become=yes
"""
GROUP_VARS = {
    "all.yml": "ansible_ssh_private_key_file: /keys/fleet\n",
    "edge.yml": "ansible_become: true\nansible_user: deploy.bot\n",
    "dmz.yml": ("dmz_prefix: 10.1.0\n"
                "ansible_ssh_common_args: \"-o ProxyJump=jump.ops@bastion.example:2200 -o 'IdentitiesOnly=yes'\"\n"),
}
HOST_VARS = {"kvm1.yml": "ansible_ssh_private_key_file: ~/.ssh/kvm1\nansible_become: yes\n"}


def _write_inventory(root: Path) -> Path:
    inv = root / "hosts.ini"
    inv.write_text(INVENTORY)
    for sub, files in (("group_vars", GROUP_VARS), ("host_vars", HOST_VARS)):
        (root / sub).mkdir()
        for name, text in files.items():
            (root / sub / name).write_text(text)
    return inv


def _ansible_hostvars(inv: Path) -> dict[str, dict[str, Any]]:
    """`ansible-inventory --list`'s hostvars: what `ansible-inventory --host H` prints, for every host."""
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "ansible-inventory"
    cfg = inv.parent / "ansible.cfg"
    cfg.write_text("[defaults]\n")  # not the ansible.cfg of the machine running the test
    out = subprocess.run([str(exe), "-i", str(inv), "--list"], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "ANSIBLE_CONFIG": str(cfg), "HOME": str(inv.parent)})
    hostvars: dict[str, dict[str, Any]] = json.loads(out.stdout)["_meta"]["hostvars"]
    return hostvars


def _as_ansible_sees_it(host: str, v: dict[str, Any]) -> Endpoint:
    """The endpoint Ansible's ssh connection makes of a host's variables (templates rendered by
    hand: ansible-inventory shows them raw)."""
    import shlex

    become = v.get("ansible_become") in (True, "yes")
    if v.get("ansible_connection") == "local":
        return Endpoint(host, "local://", sudo=True if become else None)
    addr = str(v.get("ansible_host", host)).replace("{{ dmz_prefix }}", str(v.get("dmz_prefix")))
    addr = f"[{addr}]" if ":" in addr else addr
    user, port = v.get("ansible_user"), v.get("ansible_port")
    url = f"ssh://{f'{user}@' if user else ''}{addr}{f':{port}' if port else ''}"
    key = v.get("ansible_ssh_private_key_file")
    args = shlex.split(v.get("ansible_ssh_common_args", "")) + shlex.split(v.get("ansible_ssh_extra_args", ""))
    return Endpoint(host, url, str(Path(key).expanduser()) if key else None, True if become else None, tuple(args))


def test_inventory_resolved_as_ansible_resolves_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    inv = _write_inventory(tmp_path)
    got = {e.name: e for e in inventory_endpoints(str(inv))}
    assert sorted(got) == ["kvm1", "kvm2", "kvm3", "self", "web1", "web2"]
    hostvars = _ansible_hostvars(inv)
    assert sorted(hostvars) == sorted(got)
    for name, e in got.items():
        assert e == _as_ansible_sees_it(name, hostvars[name]), name
    # and what that means, spelled out
    assert got["kvm1"] == Endpoint("kvm1", "ssh://ops@10.0.0.6:2222", f"{tmp_path}/.ssh/kvm1", True)
    assert got["kvm2"].url == "ssh://john.doe@10.0.0.7:2222" and got["kvm2"].identity_file == "/keys/fleet"
    assert got["kvm3"].url == "ssh://ops@[fd00::7]:2222" and got["kvm3"].sudo is None
    assert got["web1"] == Endpoint("web1", "ssh://deploy.bot@10.1.0.9", "/keys/fleet", True,
                                   ("-o", "ProxyJump=jump.ops@bastion.example:2200", "-o", "IdentitiesOnly=yes"))
    assert got["web2"].ssh_args[-2:] == ("-o", "ServerAliveInterval=7")
    assert got["self"] == Endpoint("self", "local://", sudo=True)
    # --limit is an Ansible pattern
    assert [e.name for e in inventory_endpoints(str(inv), "edge:!web2")] == ["web1"]
    assert [e.name for e in inventory_endpoints(str(inv), "kvm*,self")] == ["kvm1", "kvm2", "kvm3", "self"]


def test_inventory_endpoints_reach_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ssh command testinfra builds for an inventory host carries its user, port, key and
    ProxyJump; become is sudo."""
    from ringzero.checks.run import SshOptions, connect

    monkeypatch.setenv("HOME", str(tmp_path))
    got = {e.name: e for e in inventory_endpoints(str(_write_inventory(tmp_path)))}
    host = connect(got["web1"], SshOptions(), str(tmp_path / "ssh_config"), str(tmp_path / "cm"))
    cmd, args = host.backend._build_ssh_command("true")
    line = " ".join(cmd) % tuple(f"'{a}'" for a in args)
    assert "-o ProxyJump=jump.ops@bastion.example:2200 -o IdentitiesOnly=yes" in line
    assert "-o User='deploy.bot'" in line and "-i '/keys/fleet'" in line and "Port" not in line
    assert host.backend.sudo
    plain = connect(got["kvm3"], SshOptions(), str(tmp_path / "ssh_config"), str(tmp_path / "cm"))
    assert not plain.backend.sudo and connect(got["kvm3"], SshOptions(sudo=True), "", "").backend.sudo


@pytest.mark.parametrize(("line", "message"), [
    ("h ansible_become=yes ansible_become_method=su", "ansible_become_method=su"),
    ("h ansible_become=yes ansible_become_user=postgres", "ansible_become_user=postgres"),
    ("h ansible_connection=docker", "ansible_connection=docker"),
    ("h ansible_ssh_common_args='-o \"ProxyJump=x'", "ansible_ssh_common_args"),
])
def test_inventory_errors_name_the_host(line: str, message: str, tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text(f"[g]\n{line}\n")
    with pytest.raises(ValueError, match=re.escape(f"inventory {inv}: host h: ") + ".*" + re.escape(message)):
        inventory_endpoints(str(inv))


@pytest.mark.parametrize(("argv", "message"), [
    (["check", "--baseline", "isolation"], "name the machines with --hosts or --inventory"),
    (["check", "--hosts", "local://"], "give --manifest M.json and/or --baseline NAME"),
    (["check", "--hosts", "local://", "--baseline", "cis"], "'cis' is not a built-in baseline; allowed: isolation"),
    (["check", "--hosts", "local://", "--baseline", "isolation", "--param", "nested=maybe"],
     "--param nested=maybe: allowed values: on, off"),
    (["check", "--hosts", "local://", "--baseline", "isolation", "--param", "speed=fast"], "--param speed"),
    (["check", "--hosts", "ftp://x", "--baseline", "isolation"], "--hosts: 'ftp://x': expected"),
    (["check", "--hosts", "local://", "--baseline", "isolation", "--waivers", "/nonexistent.yaml"],
     "/nonexistent.yaml: cannot read"),
    (["check", "--hosts", "local://", "--manifest", "/nonexistent.json"], "manifest /nonexistent.json: cannot read"),
    (["render", "--program", "/nonexistent.py", "--out", "/tmp/x"], "no such file"),
    (["check", "--hosts", "local://", "--baseline", "isolation", "--ssh-config", "/nonexistent/config"],
     "--ssh-config /nonexistent/config: no such file"),
    (["check", "--inventory", "/nonexistent/hosts.ini", "--baseline", "isolation"],
     "--inventory: inventory /nonexistent/hosts.ini: no such file"),
])
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unreachable_host_exits_2_naming_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    rc = main(["check", "--hosts", "gone=ssh://root@127.0.0.1:1", "--baseline", "isolation", "--quiet",
               "--known-hosts", str(kh), "--junit", str(tmp_path / "r.xml")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "gone: cannot connect over SSH to ssh://root@127.0.0.1:1" in err and "refused" in err
    root = ET.parse(tmp_path / "r.xml").getroot()
    assert root.get("errors") == str(len(BROKEN))


def test_list_baselines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--list-baselines"]) == 0
    assert capsys.readouterr().out.splitlines() == ["isolation", "isolation-hypervisor"]


def test_program_without_a_manifest_output_is_an_input_error(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    program = tmp_path / "__main__.py"
    program.write_text("import pulumi\npulumi.export('answer', 42)\n")
    assert main(["manifest", "--program", str(program)]) == 2
    assert "exports no `manifest` output" in capsys.readouterr().err


def test_manifest_of_a_program_and_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.json"
    assert main(["manifest", "--program", str(ROOT / "__main__.py"), "--config", str(ROOT / "Pulumi.local.yaml"),
                 "--out", str(out)]) == 0
    reference = from_data(local_config())  # Pulumi.local.yaml as it is (local_topology adds to it)
    got, want = json.loads(out.read_text()), to_manifest(reference)
    for doc in (got, want):  # the program resolves image files beside itself, the fixture under a fake dir
        for img in doc["images"]:
            img.update({k: Path(img[k]).name for k in ("source", "kernel", "initrd") if img.get(k)})
    assert got == want
    assert main(["render", "--manifest", str(out), "--out", str(tmp_path / "review")]) == 0
    expected = artifacts(reference)
    written = {str(p.relative_to(tmp_path / "review")): p.read_text()
               for p in (tmp_path / "review").rglob("*") if p.is_file()}
    assert written == expected
    assert "domain-qemu-vm1.xml" in written and "vm1/etc/ringzero/seccomp/no-mkdir.json" in written
    assert "vm1/etc/systemd/system/ringzero-ebpf-execsnoop.service" in written
    assert "GENERATED-BY-PULUMI-UP" in written["cloud-init-vm1-user-data"]  # never a real key
    assert f"{len(expected)} artifacts" in capsys.readouterr().out


def test_checks_sharing_an_aspect_are_judged_each_on_its_own() -> None:
    """memory.max is an aspect of every slice: one slice's verdict must not stand for another's."""
    from ringzero.checks import expectations

    topology = local_topology()
    checks = [c for c in expectations(topology, {"vm1"}) if c.aspect == "memory.max"]
    assert len(checks) >= 2
    first = checks[0]
    values = {k: None for c in checks for k in c.reads}
    node, memo = probe(values), {}
    siblings = {c.control: c for c in checks}
    results = [judge_check(c, node, siblings, memo) for c in checks]
    assert all(s == "fail" for s, _ in results)
    assert len({m for _, m in results}) == len(checks), "one verdict was reused for another slice"
    assert set(memo) == {c.control for c in checks} and first.control.startswith("slice:")


def test_a_value_the_login_cannot_read_is_an_error_not_a_verdict() -> None:
    from ringzero.checks.probe import UNREADABLE, parse

    out = "\x1efile:/sys/kernel/security/apparmor/profiles\n\x1eunreadable\n\x1efile:/etc/hostname\nvm1\n"
    assert parse(out) == {"file:/sys/kernel/security/apparmor/profiles": UNREADABLE, "file:/etc/hostname": "vm1"}
    result = judge(GOOD | {"file:/sys/kernel/security/apparmor/profiles": UNREADABLE})
    status, message = result["RZ-APPARMOR-2"]
    assert status == "error" and "exists but this login cannot read it" in message
    assert {k for k, (s, _) in result.items() if s != "pass"} == {"RZ-APPARMOR-2"}
