"""ComplianceCheck: run the compliance suite inside `pulumi up`, after the policies.

A dynamic resource around `pytest <ringzero/compliance_suite>`: it checks every declared policy
of the given nodes on the nodes themselves, writes a JUnit report, exports the counts, and
fails the update when `enforce=True` and anything failed. It runs again only when the
manifest, the nodes or what was applied changed (its `applied` input: the PlaybookRuns'
`apply_id`s), so a no-op `pulumi up` opens no SSH connection; `pulumi refresh` runs it again
and shows failures in its outputs. Example::

    ComplianceCheck("compliance", manifest=deployed.manifest_json(), nodes=[vm1_target],
                    private_key=access.private_key, applied=[run.apply_id], enforce=True)
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dyn

from . import keyfiles
from .dynamic import DYNAMIC_ALIASES
from .paths import compliance_dir


@dataclass
class Counts:
    passed: int
    failed: int
    errors: int
    skipped: int
    failures: list[str]  # "<check id>: <first line of the message>"
    outcomes: dict[str, str]  # check id -> passed | failure | error | skipped


def junit_counts(path: str) -> Counts:
    """Counts, failures and each check's outcome from a pytest JUnit XML report."""
    outcomes: dict[str, str] = {}
    failures: list[str] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        cid = name[name.find("[") + 1 : -1] if "[" in name else name
        outcomes[cid] = "passed"
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcomes[cid] = tag
                if tag != "skipped":
                    failures.append(f"{cid}: {(el.get('message') or tag).splitlines()[0][:300]}")
                break
    n = list(outcomes.values())
    return Counts(n.count("passed"), n.count("failure"), n.count("error"), n.count("skipped"), failures, outcomes)


def run_suite(manifest: str, nodes: list[dict[str, Any]], private_key: str, report: str) -> Counts:
    """The suite from the installed package against `nodes`; the JUnit report lands at `report`."""
    Path(report).parent.mkdir(parents=True, exist_ok=True)
    # the key exists only inside this 0700 directory, for this run (see ringzero.keyfiles)
    with keyfiles.private_tempdir("ringzero-compliance-") as tmp_dir:
        tmp = str(tmp_dir)
        mpath = str(keyfiles.write_secret(tmp_dir / "manifest.json", manifest))
        key = str(keyfiles.write_key(tmp_dir / "key", private_key))
        kh = str(keyfiles.write_secret(tmp_dir / "known_hosts", "".join(str(n["known_hosts"]) + "\n" for n in nodes)))
        # testinfra's --hosts syntax; the node each address plays is named in the same order
        hosts = ",".join(f"ssh://{n['user']}@{n['host']}:{int(n['port'])}" for n in nodes)
        suite = compliance_dir()
        res = subprocess.run(
            [sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider",
             f"--rootdir={suite}", "--manifest", mpath, "--hosts", hosts,
             "--node-names", ",".join(str(n["name"]) for n in nodes), "--ssh-identity-file", key,
             "--known-hosts", kh, f"--junitxml={report}", "-o", "junit_family=xunit1"],
            capture_output=True, text=True, timeout=1800, cwd=tmp, env=keyfiles.safe_env(),
        )
        if res.returncode not in (0, 1) or not Path(report).exists():
            raise RuntimeError(f"the compliance suite could not run (exit {res.returncode}):\n"
                               f"{(res.stdout + res.stderr)[-1500:]}")
    return junit_counts(report)


class ComplianceCheckProvider(dyn.ResourceProvider):
    """Small and stable on purpose: dill pickles this class into state by reference."""

    def _run(self, props: dict[str, Any], enforce: bool = True) -> dict[str, Any]:
        c = run_suite(props["manifest"], props["nodes"], props["private_key"], props["report_path"])
        if enforce and props["enforce"] and (c.failed or c.errors):
            raise RuntimeError(
                f"ComplianceCheck '{props['name']}': {c.failed} failed, {c.errors} errors of "
                f"{c.passed + c.failed + c.errors} checks (report: {props['report_path']}):\n  "
                + "\n  ".join(c.failures[:20]))
        return {**props, "passed": c.passed, "failed": c.failed, "errors": c.errors, "failures": c.failures}

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        return dyn.CreateResult(id_=props["name"], outs=self._run(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        keys = ("manifest", "nodes", "applied", "enforce", "report_path")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        return dyn.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(outs=self._run(news))

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        # `pulumi refresh` checks the nodes again: failures show in the outputs (never raises).
        return dyn.ReadResult(id_=id_, outs=self._run(props, enforce=False))


class ComplianceCheck(dyn.Resource, module="ringzero", name="ComplianceCheck"):
    """Outputs: `passed`, `failed`, `errors` (counts), `failures` (ids and messages), `report_path`."""

    passed: pulumi.Output[int]
    failed: pulumi.Output[int]
    errors: pulumi.Output[int]
    failures: pulumi.Output[list[str]]
    report_path: pulumi.Output[str]

    def __init__(
        self, name: str, *, manifest: pulumi.Input[str], nodes: Sequence[pulumi.Input[dict[str, Any]]],
        private_key: pulumi.Input[str], applied: Sequence[pulumi.Input[str]] | None = None,
        enforce: bool = True, report_path: str | None = None, opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        report = report_path or str(Path.cwd() / "reports" / f"{pulumi.get_stack()}-{name}.xml")
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["private_key"],
                                                                         aliases=DYNAMIC_ALIASES))
        super().__init__(
            ComplianceCheckProvider(), name,
            {
                "name": name, "manifest": manifest, "nodes": list(nodes),
                "private_key": pulumi.Output.secret(private_key), "applied": list(applied or []),
                "enforce": enforce, "report_path": report,
                "passed": None, "failed": None, "errors": None, "failures": None,
            },
            opts,
        )
