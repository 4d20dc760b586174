"""The Ansible worker's lifetime is bound to the engine's: `pulumi_engine` finds the Pulumi CLI
above the dynamic provider (whose launcher is a shell script, so the CLI is not its parent),
and the worker ends when that process dies (the fault tier proves it with a SIGKILLed `pulumi
up` on a real guest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ringzero.playbook import pulumi_engine

PROBE = "from ringzero.playbook import pulumi_engine; print(pulumi_engine())"


def test_the_pulumi_cli_is_found_above_a_shell_launcher(tmp_path: Path) -> None:
    engine = tmp_path / "pulumi"
    engine.symlink_to(sys.executable)  # a process whose name is `pulumi`
    code = ("import subprocess, os, sys; "
            f"out = subprocess.run(['sh', '-c', '{sys.executable} -c \"{PROBE}\"'], capture_output=True, text=True); "
            "print(os.getpid(), out.stdout.strip(), out.stderr)")
    res = subprocess.run([str(engine), "-c", code], capture_output=True, text=True, timeout=60)
    pid, found = res.stdout.split()[:2]
    assert found == pid, res


def test_no_engine_outside_pulumi() -> None:
    assert pulumi_engine() is None
    res = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "None", res
