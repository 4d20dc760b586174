"""ComplianceCheck: the declared policies proven inside `pulumi up`, by `ringzero check`'s engine.

A dynamic resource that calls the check engine in-process (`ringzero.checks.run.run_checks`:
the checks a manifest expands into, the same `judge`, waivers and reports as `ringzero check
--manifest`): one SSH connection per node, host keys pinned to the nodes' `known_hosts`. It
writes a JUnit report at `report_path` and a SARIF 2.1.0 report beside it (`.sarif`), exports
the counts, and fails the update when `enforce=True` and a check failed or could not be
decided. It runs again only when the manifest, the nodes, the waivers or what was applied
changed (its `applied` input: the PlaybookRuns' `apply_id`s), so a no-op `pulumi up` opens no
SSH connection; `pulumi refresh` checks again and shows failures in its outputs (never
raising). Example::

    ComplianceCheck("compliance", manifest=deployed.manifest_json(), nodes=[node_connection(vm)],
                    private_key=access.private_key, applied=[run.apply_id], enforce=True,
                    waivers=[{"control": "slice:web.slice::memory.max", "hosts": ["vm1"],
                              "reason": "raised by hand during the migration (OPS-7)", "expires": "2027-01-31"}])
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi.dynamic as dyn

from . import keyfiles
from .dynamic import DYNAMIC_ALIASES

if TYPE_CHECKING:
    from .checks.run import Report
    from .checks.waivers import Waiver

# what an outcome's first line may keep in `failures` (the reports have every word)
MESSAGE_CHARS = 300


@dataclass
class Verdict:
    """What one run of the engine comes to, as ComplianceCheck exports it."""

    passed: int
    failed: int
    errors: int
    waived: int
    skipped: int  # n/a, or a prerequisite that did not pass
    score: float  # percent of judged checks (pass, fail, error) that pass
    failures: list[str]  # "<check id>: <first line>" of every fail and error; "<node>: <why>" of an unread node
    outcomes: dict[str, str]  # check id (`vm1::slice:web.slice::memory.max`) -> pass|fail|waived|error|n/a|skipped
    notes: list[str] = field(default_factory=list)  # waivers that expired or matched nothing
    report_path: str = ""
    sarif_path: str = ""


def sarif_path_for(report_path: str) -> str:
    """The SARIF report beside the JUnit one: `reports/prod-compliance.xml` -> `….sarif`."""
    return str(Path(report_path).with_suffix(".sarif"))


def waiver_data(waivers: str | Sequence[Mapping[str, Any]] | None, where: str) -> list[dict[str, Any]]:
    """Waivers from a YAML file (`path`) or inline (a list of control/hosts/reason/expires),
    checked (a WaiverError names the waiver and field) and as plain data for the resource's
    inputs: a changed waivers file is a changed input, so the checks run again."""
    from .checks.waivers import load_waivers, parse_waivers

    if waivers is None:
        return []
    parsed = load_waivers(waivers) if isinstance(waivers, str) else \
        parse_waivers({"waivers": [dict(w) for w in waivers]}, where)
    return [{"control": w.control, "hosts": list(w.hosts), "reason": w.reason, "expires": w.expires.isoformat()}
            for w in parsed]


def verdict(report: Report) -> Verdict:
    """Counts, failures and each check's outcome of an engine `Report`."""
    failures = [f"{m.endpoint.name}: {m.error}" for m in report.machines if m.error]
    unread = {m.endpoint.name for m in report.machines if m.error}
    failures += [f"{o.check.id}: {(o.message.splitlines() or [o.status])[0][:MESSAGE_CHARS]}"
                 for o in report.outcomes if o.status in ("fail", "error") and o.node not in unread]
    notes = [f"{o.check.id}: waiver #{o.waiver.index} expired on {o.waiver.expires}: the failure counts"
             for o in report.expired_waivers if o.waiver is not None]
    notes += [f"{w.describe()}: matched no check" for w in report.unused_waivers]
    return Verdict(
        passed=report.count("pass"), failed=report.count("fail"), errors=report.count("error"),
        waived=report.count("waived"), skipped=report.count("n/a") + report.count("skipped"),
        score=round(report.score, 1), failures=failures, notes=notes,
        outcomes={o.check.id: o.status for o in report.outcomes})


class _LogLines(io.StringIO):
    """A text stream for the engine's progress: each line an `info:` line of `pulumi up`."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                try:
                    pulumi.log.info(f"{self.label}{line}", ephemeral=True)
                except Exception:  # outside an engine (tests, benchmarks): stderr
                    print(f"{self.label}{line}", file=sys.stderr, flush=True)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def run_compliance(manifest: str, nodes: Sequence[Mapping[str, Any]], private_key: str, report_path: str,
                   waivers: Sequence[Mapping[str, Any]] = (), label: str = "") -> Verdict:
    """Every declared check of `nodes` (manifest node names), by the engine of `ringzero check`,
    in this process: one SSH connection per node as `user@host:port`, its host key pinned to the
    node's `known_hosts` line(s); the private key exists only in a 0700 directory for the run.
    Writes JUnit at `report_path`, SARIF beside it and the manifest it points into
    (`<report>.manifest.json`); returns the verdict.

        run_compliance(manifest_json, [{"name": "vm1", "host": "127.0.0.1", "port": 2201, "user": "root",
                                        "known_hosts": "[127.0.0.1]:2201 ssh-ed25519 AAAA…"}], key, "r/c.xml")
    """
    # the engine is imported here: this module is loaded by every dynamic provider process
    from .checks import machine_checks
    from .checks.base import Check
    from .checks.hosts import Endpoint
    from .checks.progress import Progress
    from .checks.report import junit, sarif
    from .checks.run import SshOptions, run_checks
    from .checks.waivers import parse_waivers
    from .spec import from_manifest

    topology = from_manifest(json.loads(manifest))
    parsed: list[Waiver] = parse_waivers({"waivers": [dict(w) for w in waivers]}, "ComplianceCheck waivers")
    report_file = Path(report_path)
    report_file.parent.mkdir(parents=True, exist_ok=True)
    # SARIF locates each result at its policy's entry under its node in this file
    manifest_file = report_file.with_suffix(".manifest.json")
    manifest_file.write_text(json.dumps(json.loads(manifest), indent=2, sort_keys=True) + "\n")
    endpoints = [Endpoint(str(n["name"]), f"ssh://{n['user']}@{n['host']}:{int(n['port'])}") for n in nodes]

    def checks_for(e: Endpoint) -> list[Check]:
        return machine_checks(e.name, topology, [], {})

    # the key exists only inside this 0700 directory, for this run (see ringzero.keyfiles)
    with keyfiles.private_tempdir("ringzero-compliance-") as tmp:
        key = keyfiles.write_key(tmp / "key", private_key)
        known_hosts = keyfiles.write_secret(tmp / "known_hosts", "".join(f"{n['known_hosts']}\n" for n in nodes))
        report: Report = run_checks(
            endpoints, checks_for, ssh=SshOptions(str(key), str(known_hosts)), waivers=parsed,
            manifest=str(manifest_file),
            progress=Progress([e.name for e in endpoints], stream=_LogLines(label), colour=False))
    out = verdict(report)
    out.report_path, out.sarif_path = str(report_file), sarif_path_for(report_path)
    report_file.write_text(junit(report))
    Path(out.sarif_path).write_text(json.dumps(sarif(report), indent=2) + "\n")
    return out


class ComplianceCheckProvider(dyn.ResourceProvider):
    """Small and stable on purpose: dill pickles this class into state by reference."""

    def _run(self, props: dict[str, Any], enforce: bool = True) -> dict[str, Any]:
        v = run_compliance(props["manifest"], props["nodes"], props["private_key"], props["report_path"],
                           props.get("waivers") or [], label=f"{props['name']}: ")
        for note in v.notes:
            pulumi.log.warn(f"ComplianceCheck '{props['name']}': {note}")
        if enforce and props["enforce"] and (v.failed or v.errors):
            raise RuntimeError(
                f"ComplianceCheck '{props['name']}': {v.failed} failed, {v.errors} errors of "
                f"{len(v.outcomes)} checks (JUnit: {v.report_path}, SARIF: {v.sarif_path}):\n  "
                + "\n  ".join(v.failures[:20]))
        return {**props, "passed": v.passed, "failed": v.failed, "errors": v.errors, "waived": v.waived,
                "skipped": v.skipped, "score": v.score, "failures": v.failures, "notes": v.notes,
                "sarif_path": v.sarif_path}

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        return dyn.CreateResult(id_=props["name"], outs=self._run(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        keys = ("manifest", "nodes", "applied", "enforce", "report_path")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        # a stack checked before waivers existed has none: no change, no new run
        if (olds.get("waivers") or []) != (news.get("waivers") or []):
            changed.append("waivers")
        return dyn.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(outs=self._run(news))

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        # `pulumi refresh` checks the nodes again: failures show in the outputs (never raises).
        return dyn.ReadResult(id_=id_, outs=self._run(props, enforce=False))


class ComplianceCheck(dyn.Resource, module="ringzero", name="ComplianceCheck"):
    """Outputs: `passed`, `failed`, `errors`, `waived`, `skipped` (counts), `score` (percent of
    judged checks that pass), `failures` (check ids and messages), `notes` (expired or unused
    waivers), `report_path` (JUnit) and `sarif_path` (SARIF 2.1.0).

    `waivers`: a waivers file (YAML, as `ringzero check --waivers`) or the list inline; a
    waived failure neither counts as failed nor fails the update until its `expires` date."""

    passed: pulumi.Output[int]
    failed: pulumi.Output[int]
    errors: pulumi.Output[int]
    waived: pulumi.Output[int]
    skipped: pulumi.Output[int]
    score: pulumi.Output[float]
    failures: pulumi.Output[list[str]]
    notes: pulumi.Output[list[str]]
    report_path: pulumi.Output[str]
    sarif_path: pulumi.Output[str]

    def __init__(
        self, name: str, *, manifest: pulumi.Input[str], nodes: Sequence[pulumi.Input[dict[str, Any]]],
        private_key: pulumi.Input[str], applied: Sequence[pulumi.Input[str]] | None = None,
        enforce: bool = True, report_path: str | None = None,
        waivers: str | Sequence[Mapping[str, Any]] | None = None, opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        from .checks.waivers import WaiverError

        report = report_path or str(Path.cwd() / "reports" / f"{pulumi.get_stack()}-{name}.xml")
        try:
            waiver_list = waiver_data(waivers, f"ComplianceCheck '{name}': waivers")
        except WaiverError as e:
            raise pulumi.RunError(f"ComplianceCheck '{name}': {e}") from None
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["private_key"],
                                                                         aliases=DYNAMIC_ALIASES))
        super().__init__(
            ComplianceCheckProvider(), name,
            {
                "name": name, "manifest": manifest, "nodes": list(nodes),
                "private_key": pulumi.Output.secret(private_key), "applied": list(applied or []),
                "enforce": enforce, "report_path": report, "waivers": waiver_list,
                "passed": None, "failed": None, "errors": None, "waived": None, "skipped": None, "score": None,
                "failures": None, "notes": None, "sarif_path": None,
            },
            opts,
        )
