"""`ringzero check`'s reports from one run: JUnit XML, SARIF 2.1.0, an HTML matrix, a terminal summary.

Every report is computed from the same `Report`; none of them re-judges anything. Example::

    Path("r.sarif").write_text(json.dumps(sarif(report), indent=2))
    Path("r.html").write_text(html(report))
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..render import render
from .base import Check
from .run import Outcome, Report

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
# SARIF result kinds: a result that is not a failure carries level "none" (SARIF 3.27.9)
_KIND = {"pass": "pass", "fail": "fail", "waived": "fail", "error": "open", "n/a": "notApplicable",
         "skipped": "notApplicable"}
SYMBOL = {"pass": "✓", "fail": "✗", "waived": "W", "error": "!", "n/a": "-", "skipped": "↷"}


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
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# ---- SARIF 2.1.0 ----------------------------------------------------------------------------
def _rule(control: str, c: Check) -> dict[str, Any]:
    return {
        "id": control,
        "name": control,
        "shortDescription": {"text": c.title or control},
        "fullDescription": {"text": c.rationale or c.title or control},
        "defaultConfiguration": {"level": _LEVEL.get(c.impact, "warning")},
        "properties": {"impact": c.impact, "security-severity": _SEVERITY.get(c.impact, "5.5"),
                       "tags": ["security", "isolation", "baseline" if c.subject == "baseline" else "declared"]},
    }


def _result(o: Outcome, index: int) -> dict[str, Any]:
    kind = _KIND[o.status]
    text = o.message or f"{o.check.title or o.check.control}: passes"
    res: dict[str, Any] = {
        "ruleId": o.check.control,
        "ruleIndex": index,
        "kind": kind,
        "level": _LEVEL.get(o.check.impact, "warning") if kind == "fail" else "none",
        "message": {"text": f"{o.node}: {text}"},
        "locations": [{"logicalLocations": [{"name": o.node, "fullyQualifiedName": f"{o.node}/{o.check.control}",
                                             "kind": "resource"}]}],
        "properties": {"host": o.node, "status": o.status},
    }
    if o.waiver is not None:
        res["properties"]["waiver"] = {"reason": o.waiver.reason, "expires": o.waiver.expires.isoformat(),
                                       "expired": o.waiver_expired}
    if o.status == "waived" and o.waiver is not None:
        res["suppressions"] = [{"kind": "external", "status": "accepted",
                                "justification": f"{o.waiver.reason} (until {o.waiver.expires})"}]
    return res


def sarif(report: Report) -> dict[str, Any]:
    controls = report.controls
    index = {cid: i for i, (cid, _) in enumerate(controls)}
    errors = [{"level": "error", "message": {"text": f"{m.endpoint.name} ({m.endpoint.url}): {m.error}"}}
              for m in report.machines if m.error]
    end = report.started + dt.timedelta(seconds=report.seconds)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "ringzero", "version": ringzero_version(),
                                "informationUri": "https://pypi.org/project/ringzero/",
                                "rules": [_rule(cid, check) for cid, check in controls]}},
            "invocations": [{"executionSuccessful": not errors, "startTimeUtc": _utc(report.started),
                             "endTimeUtc": _utc(end), "toolExecutionNotifications": errors}],
            "results": [_result(o, index[o.check.control]) for o in report.outcomes],
            "properties": {"baselines": report.baselines, "score": round(report.score, 1),
                           "hosts": [m.endpoint.name for m in report.machines]},
        }],
    }


# ---- HTML and terminal ----------------------------------------------------------------------
def html(report: Report) -> str:
    """A self-contained page (inline CSS, no script, no external resource): the host x control matrix."""
    counts = {s: report.count(s) for s in SYMBOL}
    return render("report/check.html.j2", report=report, controls=report.controls, counts=counts,
                  symbol=SYMBOL, version=ringzero_version(), generated=_utc(report.started),
                  problems=[o for o in report.outcomes if o.status in ("fail", "error", "waived")])


def summary(report: Report) -> str:
    lines = []
    for m in report.machines:
        if m.error:
            lines.append(f"  ERROR   {m.endpoint.name}  {m.error} ({len(m.outcomes)} checks undecided)")
            continue
        bad = [o for o in m.outcomes if o.status in ("fail", "error", "waived")]
        for o in bad:
            lines.append(f"  {o.status.upper():7} {m.endpoint.name}  {o.check.control}  {o.message.splitlines()[0]}")
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
