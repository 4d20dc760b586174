"""The pytest plugin from the wheel alone: `pytest --pyargs ringzero.compliance_suite` from a
directory that is not the checkout knows ringzero's options through the `pytest11` entry point,
takes the machines in testinfra's syntax, and judges this machine as `ringzero check` does."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ringzero.checks import expectations
from ringzero.spec import to_manifest
from tests.fixtures import junit_statuses, local_topology, pytest_junit_outcomes, run_ok, wheel_in_fresh_venv

# `ringzero check`'s statuses as pytest reports them: n/a and prerequisite skips are skips
AS_PYTEST = {"pass": "passed", "fail": "failure", "error": "error", "n/a": "skipped", "skipped": "skipped"}

# one check per declared fact of the reference manifest (vm1's and vm2's)
DECLARED = len(expectations(local_topology()))


def test_the_suite_runs_by_entry_point_from_any_directory_and_agrees_with_ringzero_check(tmp_path: Path) -> None:
    wheel, venv = wheel_in_fresh_venv(tmp_path)
    # [check]: pytest, testinfra; [ansible]: `ansible-inventory` for testinfra's ansible:// hosts
    run_ok(venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[check,ansible]")
    py, work = venv / "bin" / "python", tmp_path / "elsewhere"
    work.mkdir()
    manifest = work / "m.json"
    manifest.write_text(json.dumps(to_manifest(local_topology())))
    assert "ringzero = ringzero.pytest_plugin" in run_ok(py, "-c", "import importlib.metadata as m; "
                                                          "print(m.distribution('ringzero').read_text('entry_points.txt'))")
    helptext = run_ok(py, "-m", "pytest", "--help", "-p", "no:cacheprovider", cwd=work)
    for option in ("--manifest", "--baseline", "--param", "--node-names", "--known-hosts",  # ringzero's
                   "--hosts", "--ssh-config", "--ansible-inventory", "--connection"):  # testinfra's, not redefined
        assert option in helptext, option

    # collecting contacts nothing: testinfra's syntax, machines named by --node-names or by inventory name
    suite = ("-m", "pytest", "--pyargs", "ringzero.compliance_suite", "-p", "no:cacheprovider")
    out = run_ok(py, *suite, "--collect-only", "-q", "--manifest", manifest,
                 "--hosts", "ssh://root@127.0.0.1:1,ssh://root@127.0.0.1:2", "--node-names", "vm1,vm2", cwd=work)
    assert "test_declared[vm1::slice:web.slice::memory.max]" in out and f"{DECLARED} tests collected" in out, out
    inventory = work / "hosts.ini"
    inventory.write_text("[nodes]\nvm1 ansible_host=127.0.0.1 ansible_port=1\n"
                         "vm2 ansible_host=127.0.0.1 ansible_port=2\n")
    # testinfra runs `ansible-inventory`: the venv's, on PATH as an activated venv has it
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    res = subprocess.run([py, *suite, "--collect-only", "-q", "--manifest", manifest, "--hosts", "ansible://all",
                          "--ansible-inventory", inventory], cwd=work, env=env, capture_output=True, text=True)
    out = res.stdout + res.stderr
    assert "test_declared[vm2::host:kvm::libvirtd]" in out and f"{DECLARED} tests collected" in out, out

    # this machine, read for real: the manifest's nodes are not this machine, so the baseline decides
    junit = work / "pytest.xml"
    res = subprocess.run([py, *suite, "-q", "--manifest", manifest, "--hosts", "local://", "--baseline", "isolation",
                          f"--junitxml={junit}", "-o", "junit_family=xunit1"],
                         cwd=work, capture_output=True, text=True, timeout=600)
    assert res.returncode in (0, 1) and junit.exists(), res.stdout[-3000:] + res.stderr[-2000:]
    by_pytest = pytest_junit_outcomes(junit)
    cli_junit = work / "check.xml"
    res = subprocess.run([venv / "bin" / "ringzero", "check", "--manifest", manifest, "--hosts", "local://",
                          "--baseline", "isolation", "--junit", cli_junit, "-q"],
                         cwd=work, capture_output=True, text=True, timeout=600)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    by_cli = {f"{host}::baseline::{control}": AS_PYTEST[s] for (host, control), s in junit_statuses(cli_junit).items()}
    assert len(by_cli) == 13 and by_pytest == by_cli, (by_pytest, by_cli)
    # and `--connection local` (testinfra's way to say this machine) is the same machine
    junit2 = work / "pytest-connection.xml"
    subprocess.run([py, *suite, "-q", "--manifest", manifest, "--connection", "local", "--baseline", "isolation",
                    f"--junitxml={junit2}", "-o", "junit_family=xunit1"], cwd=work, capture_output=True, timeout=600)
    assert pytest_junit_outcomes(junit2) == by_pytest
