"""`ringzero plan --node N`: the variables file of the playbooks (`-e @FILE`), from a manifest or
a program, equal to the plan Pulumi's PlaybookRun passes; bad input is one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from ringzero.plan import node_plan
from ringzero.spec import to_manifest
from tests.fixtures import ROOT, local_topology


def _ringzero(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ringzero.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_plan_from_a_manifest_is_the_nodes_plan_as_yaml_or_json(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(to_manifest(local_topology())))
    for node in ("vm1", "vm2"):
        want = {"ringzero_plan": node_plan(local_topology(), node)}
        res = _ringzero("plan", "--manifest", manifest, "--node", node)
        assert res.returncode == 0, res.stderr
        assert yaml.safe_load(res.stdout) == want
        out = tmp_path / "vars" / f"{node}.json"
        assert _ringzero("plan", "--manifest", manifest, "--node", node, "--out", out).returncode == 0
        assert json.loads(out.read_text()) == want
    # files are `|` blocks a reviewer can read
    text = _ringzero("plan", "--manifest", manifest, "--node", "vm1").stdout
    assert "content: |" in text and "\n        [Slice]\n" in text, text[:2000]


def test_plan_from_a_program_matches_the_manifest(tmp_path: Path) -> None:
    program = ("--program", ROOT / "__main__.py", "--config", ROOT / "Pulumi.local.yaml")
    res = _ringzero("plan", *program, "--node", "vm1", "--format", "json")
    assert res.returncode == 0, res.stderr
    manifest = tmp_path / "manifest.json"
    assert _ringzero("manifest", *program, "--out", manifest).returncode == 0
    from_manifest = _ringzero("plan", "--manifest", manifest, "--node", "vm1", "--format", "json")
    assert json.loads(res.stdout) == json.loads(from_manifest.stdout)
    assert json.loads(res.stdout)["ringzero_plan"]["files"]["/etc/systemd/system/web.slice"]["feature"] == "slices"


def test_plan_of_an_undeclared_node_is_one_line_and_exit_2(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(to_manifest(local_topology())))
    res = _ringzero("plan", "--manifest", manifest, "--node", "vm9")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip() == "ringzero: error: plan: 'vm9' is not a node of the declaration (nodes: vm1, vm2)"
    res = _ringzero("plan", "--manifest", tmp_path / "missing.json", "--node", "vm1")
    assert res.returncode == 2 and res.stderr.startswith("ringzero: error: manifest ") and "Traceback" not in res.stderr
