"""`pip install ringzero[check]` is enough for `ringzero check`: no Pulumi, no Ansible."""

from __future__ import annotations

import json
import subprocess

from tests.check.conftest import Cli


def test_check_extra_has_no_pulumi_or_ansible_and_checks_this_machine(cli: Cli) -> None:
    listed = subprocess.run([str(cli.venv / "bin" / "pip"), "list", "--format=json", "--disable-pip-version-check"],
                            capture_output=True, text=True, check=True).stdout
    names = {d["name"].lower() for d in json.loads(listed)}
    assert "ringzero" in names and "pytest-testinfra" in names
    assert not names & {"pulumi", "pulumi-libvirt", "ansible-core", "ansible-runner", "ansible", "dill"}, names

    res = cli("check", "--hosts", "local://", "--baseline", "isolation", "--quiet", "--junit", "report.xml")
    assert res.returncode in (0, 1), res.stdout + res.stderr  # judged: passes or fails, no error
    assert "Traceback" not in res.stderr
    assert (cli.workdir / "report.xml").is_file()
    assert "ModuleNotFoundError" not in res.stdout + res.stderr

    version = cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == "ringzero 0.1.0", version
