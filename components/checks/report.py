"""`ringzero check`'s reports from one run: JUnit XML, SARIF 2.1.0, an HTML matrix, a terminal summary.

Every report is computed from the same `Report`; none of them re-judges anything. Example::

    Path("r.sarif").write_text(json.dumps(sarif(report), indent=2))
    Path("r.html").write_text(html(report))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from ..render import render
from .base import Check
from .baseline import CATALOGUE
from .run import Outcome, Report

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
# SARIF result kinds: a result that is not a failure carries level "none" (SARIF 3.27.9)
_KIND = {"pass": "pass", "fail": "fail", "waived": "fail", "error": "open", "n/a": "notApplicable",
         "skipped": "notApplicable"}
SYMBOL = {"pass": "✓", "fail": "✗", "waived": "W", "error": "!", "n/a": "-", "skipped": "↷"}
# GitHub code scanning rejects a run with more results than this; past it, results that are not
# findings (pass, n/a, skipped) are left out first (the JUnit and HTML reports keep them all).
MAX_RESULTS = 25_000
_PACKAGE = CATALOGUE.resolve().parent.parent  # ringzero's own files (the catalogue) live under it
# manifest node keys by check subject kind (`slice:web.slice` is declared under the node's `slices`)
_DECLARED_UNDER = {"service": "services", "slice": "slices", "apparmor": "apparmor", "seccomp": "seccomp",
                   "ebpf": "ebpf", "namespaces": "namespaces", "fsview": "fsviews", "landlock": "landlock",
                   "firewall": "firewall", "sockfilter": "sockfilter"}


def ringzero_version() -> str:
    try:
        return version("ringzero")
    except PackageNotFoundError:
        return "0+checkout"


def _utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- JUnit ----------------------------------------------------------------------------------
def junit(report: Report) -> str:
    """One testsuite per machine, one testcase per check (classname = machine, name = control).
    n/a and skipped checks are <skipped>; waived failures are <skipped type="waived">."""
    root = ET.Element("testsuites", name="ringzero check", time=f"{report.seconds:.3f}")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for m in report.machines:
        counts = dict.fromkeys(totals, 0)
        suite = ET.SubElement(root, "testsuite", name=m.endpoint.name, hostname=m.endpoint.url,
                              time=f"{m.seconds:.3f}", timestamp=_utc(report.started))
        for o in m.outcomes:
            counts["tests"] += 1
            case = ET.SubElement(suite, "testcase", classname=m.endpoint.name, name=o.check.control, time="0")
            props = ET.SubElement(case, "properties")
            for prop, text in (("title", o.check.title), ("impact", o.check.impact), ("status", o.status),
                               ("waiver", o.waiver.describe() if o.waiver else "")):
                if text:
                    ET.SubElement(props, "property", name=prop, value=text)
            if o.status == "fail":
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=o.message.splitlines()[0], type="fail").text = o.message
            elif o.status == "error":
                counts["errors"] += 1
                ET.SubElement(case, "error", message=o.message.splitlines()[0], type="error").text = o.message
            elif o.status in ("n/a", "skipped", "waived"):
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=o.message, type=o.status)
            elif o.message:  # a pass with a note (a best_effort policy's dropped rights)
                ET.SubElement(case, "system-out").text = o.message
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# ---- SARIF 2.1.0 ----------------------------------------------------------------------------
Step = str | tuple[str, str]  # a mapping key, or the sequence item whose `key` is `value`


def source_line(root: yaml.Node | None, steps: Sequence[Step]) -> int | None:
    """The 1-based line of what `steps` lead to in a composed YAML (or JSON) document: the key's
    line for a key, the matching `key: value` line for a selected item; None when absent.

        source_line(yaml.compose(text), ["controls", ("id", "RZ-BPF-1")])
    """
    node, line = root, None
    for step in steps:
        if isinstance(step, str):
            if not isinstance(node, yaml.MappingNode):
                return None
            hit = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == step), None)
            if hit is None:
                return None
            line, node = hit[0].start_mark.line + 1, hit[1]
        else:
            if not isinstance(node, yaml.SequenceNode):
                return None
            key, want = step
            found = next(((v.start_mark.line + 1, item) for item in node.value if isinstance(item, yaml.MappingNode)
                          for k, v in item.value
                          if isinstance(k, yaml.ScalarNode) and k.value == key and getattr(v, "value", None) == want),
                         None)
            if found is None:
                return None
            line, node = found
    return line


class _Sources:
    """Where each result was declared: the catalogue entry of a baseline control, the manifest
    entry of a declared check; file URIs relative to the working directory (the repository
    root in CI: `%SRCROOT%`) or to ringzero's installed package (`RINGZERO`)."""

    def __init__(self, manifest: str | None) -> None:
        self.bases: dict[str, dict[str, Any]] = {}
        self.docs: dict[Path, yaml.Node | None] = {}
        self.manifest = Path(manifest) if manifest else None
        self.memo: dict[tuple[str, str], dict[str, Any]] = {}
        self.artifacts: dict[Path, dict[str, Any]] = {}

    def _doc(self, path: Path) -> yaml.Node | None:
        if path not in self.docs:
            try:
                loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
                self.docs[path] = yaml.compose(path.read_text(), Loader=loader)
            except (OSError, yaml.YAMLError):
                self.docs[path] = None
        return self.docs[path]

    def _artifact(self, path: Path) -> dict[str, Any]:
        # once per file: resolving paths for each of a fleet's results cost more than the rest of the SARIF
        if path not in self.artifacts:
            self.artifacts[path] = self._resolve_artifact(path)
        return self.artifacts[path]

    def _resolve_artifact(self, path: Path) -> dict[str, Any]:
        path = path.resolve()
        for base, root, what in (("%SRCROOT%", Path.cwd().resolve(), "the directory ringzero check ran in"),
                                 ("RINGZERO", _PACKAGE, "the ringzero package (its built-in catalogue)")):
            if path.is_relative_to(root):
                self.bases[base] = {"uri": root.as_uri() + "/", "description": {"text": what}}
                return {"uri": path.relative_to(root).as_posix(), "uriBaseId": base}
        return {"uri": path.as_uri()}

    def location(self, node: str, check: Check) -> dict[str, Any]:
        # a baseline control is declared in one place, whichever node it was checked on
        key = ("" if check.subject == "baseline" or self.manifest is None else node, check.control)
        if key not in self.memo:
            steps: list[Step]
            if check.subject == "baseline" or self.manifest is None:
                path, steps = CATALOGUE, ["controls", ("id", check.aspect)]
            else:
                kind, _, name = check.subject.partition(":")
                path = self.manifest
                steps = ["nodes", ("node", node)]
                steps += [_DECLARED_UNDER[kind], ("name", name)] if kind in _DECLARED_UNDER else ["host_prep"]
            line = source_line(self._doc(path), steps) or source_line(self._doc(path), steps[:2]) or 1
            self.memo[key] = {"physicalLocation": {"artifactLocation": self._artifact(path),
                                                   "region": {"startLine": line}}}
        return self.memo[key]


def fingerprint(node: str, control: str) -> str:
    """Stable across runs and edits of the declaring file: the host and the control, hashed."""
    return hashlib.sha256(f"ringzero-check\0{node}\0{control}".encode()).hexdigest()


def _rule(control: str, c: Check) -> dict[str, Any]:
    title = c.title or control
    about = c.rationale or title
    how = ("ringzero check reads the host and reports pass, fail, not applicable or error; "
           "the result says what the host shows.")
    return {
        "id": control,
        "name": control,
        "shortDescription": {"text": title},
        "fullDescription": {"text": about},
        "help": {"text": f"{title}. {about}\n{how}", "markdown": f"**{title}**\n\n{about}\n\n{how}"},
        "defaultConfiguration": {"level": _LEVEL.get(c.impact, "warning")},
        "properties": {"impact": c.impact, "security-severity": _SEVERITY.get(c.impact, "5.5"),
                       "tags": ["security", "isolation", "baseline" if c.subject == "baseline" else "declared"]},
    }


def _result(o: Outcome, index: int, sources: _Sources) -> dict[str, Any]:
    kind = _KIND[o.status]
    text = o.message or f"{o.check.title or o.check.control}: passes"
    digest = fingerprint(o.node, o.check.control)
    res: dict[str, Any] = {
        "ruleId": o.check.control,
        "ruleIndex": index,
        "kind": kind,
        "level": _LEVEL.get(o.check.impact, "warning") if kind == "fail" else "none",
        "message": {"text": f"{o.node}: {text}"},
        "locations": [{**sources.location(o.node, o.check),
                       "logicalLocations": [{"name": o.node, "fullyQualifiedName": f"{o.node}/{o.check.control}",
                                             "kind": "resource"}]}],
        # GitHub combines primaryLocationLineHash with the file and rule into an alert's identity:
        # every host points at the same declaring line, so the host goes into the hash (given here,
        # GitHub's upload action does not compute one from the line's text)
        "partialFingerprints": {"primaryLocationLineHash": f"{digest[:16]}:1", "ringzeroHostControl/v1": digest},
        "properties": {"host": o.node, "status": o.status},
    }
    if o.waiver is not None:
        res["properties"]["waiver"] = {"reason": o.waiver.reason, "expires": o.waiver.expires.isoformat(),
                                       "expired": o.waiver_expired}
    if o.status == "waived" and o.waiver is not None:
        res["suppressions"] = [{"kind": "external", "status": "accepted",
                                "justification": f"{o.waiver.reason} (until {o.waiver.expires})"}]
    return res


def _within_limit(outcomes: list[Outcome], limit: int) -> list[Outcome]:
    """At most `limit` outcomes: findings (fail, error, waived) first, in report order."""
    if len(outcomes) <= limit:
        return outcomes
    rank = {"fail": 0, "error": 1, "waived": 2, "pass": 3, "n/a": 4, "skipped": 5}
    keep = set(sorted(range(len(outcomes)), key=lambda i: (rank[outcomes[i].status], i))[:limit])
    return [o for i, o in enumerate(outcomes) if i in keep]


def sarif(report: Report, max_results: int = MAX_RESULTS) -> dict[str, Any]:
    """SARIF 2.1.0 as GitHub code scanning accepts it: a rule per control, a result per host and
    control, each located at the catalogue or manifest entry that declared it, with stable
    partialFingerprints; at most `max_results` results (findings first)."""
    controls = report.controls
    index = {cid: i for i, (cid, _) in enumerate(controls)}
    errors = [{"level": "error", "message": {"text": f"{m.endpoint.name} ({m.endpoint.url}): {m.error}"}}
              for m in report.machines if m.error]
    outcomes = _within_limit(report.outcomes, max_results)
    notes = []
    if len(outcomes) < len(report.outcomes):
        notes = [{"level": "warning", "message": {"text": (
            f"{len(report.outcomes) - len(outcomes)} of {len(report.outcomes)} results left out: GitHub code scanning "
            f"accepts at most {max_results} per run (failures and errors are kept; the JUnit and HTML reports "
            "have every result)")}}]
    sources = _Sources(report.manifest)
    results = [_result(o, index[o.check.control], sources) for o in outcomes]
    end = report.started + dt.timedelta(seconds=report.seconds)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "ringzero", "version": ringzero_version(),
                                "informationUri": "https://pypi.org/project/ringzero/",
                                "rules": [_rule(cid, check) for cid, check in controls]}},
            "originalUriBaseIds": sources.bases,
            "invocations": [{"executionSuccessful": not errors, "startTimeUtc": _utc(report.started),
                             "endTimeUtc": _utc(end), "toolExecutionNotifications": errors + notes}],
            "results": results,
            "properties": {"baselines": report.baselines, "score": round(report.score, 1),
                           "hosts": [m.endpoint.name for m in report.machines],
                           "omittedResults": len(report.outcomes) - len(outcomes)},
        }],
    }


# ---- HTML and terminal ----------------------------------------------------------------------
def html(report: Report) -> str:
    """A self-contained page (inline CSS, no script, no external resource): the host x control matrix."""
    counts = {s: report.count(s) for s in SYMBOL}
    return render("report/check.html.j2", report=report, controls=report.controls, counts=counts,
                  symbol=SYMBOL, version=ringzero_version(), generated=_utc(report.started),
                  problems=[o for o in report.outcomes if o.status in ("fail", "error", "waived")],
                  notes=[o for o in report.outcomes if o.status == "pass" and o.message])


def summary(report: Report) -> str:
    lines = []
    for m in report.machines:
        if m.error:
            lines.append(f"  ERROR   {m.endpoint.name}  {m.error} ({len(m.outcomes)} checks undecided)")
            continue
        bad = [o for o in m.outcomes if o.status in ("fail", "error", "waived")]
        for o in bad:
            lines.append(f"  {o.status.upper():7} {m.endpoint.name}  {o.check.control}  {o.message.splitlines()[0]}")
        for o in m.outcomes:
            if o.status == "pass" and o.message:
                lines.append(f"  NOTE    {m.endpoint.name}  {o.check.control}  {o.message.splitlines()[0]}")
    for o in report.expired_waivers:
        lines.append(f"  EXPIRED {o.node}  {o.check.control}  waiver #{o.waiver.index if o.waiver else '?'} "
                     f"expired on {o.waiver.expires if o.waiver else '?'}: the failure counts")
    for w in report.unused_waivers:
        lines.append(f"  NOTE    waiver #{w.index} ({w.control} on {', '.join(w.hosts)}) matched no check")
    judged = report.count("pass") + report.count("fail") + report.count("error")
    counts = ", ".join(f"{report.count(s)} {s}" for s in SYMBOL if report.count(s))
    lines.append(f"score {report.score:.0f}% ({report.count('pass')}/{judged} judged checks pass) "
                 f"on {len(report.machines)} host(s): {counts}; {report.seconds:.1f} s")
    return "\n".join(lines)
