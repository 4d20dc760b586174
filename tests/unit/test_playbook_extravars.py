"""The plan reaches ansible-playbook as a file in the 0700 private data dir, never on its
command line (visible in `ps`; Linux refuses one argument over 128 KiB): the command
ansible-runner builds holds no plan content, and a plan of more than 128 KiB arrives whole."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import ansible_runner
import yaml
from ansible_runner.interface import init_runner

from ringzero import keyfiles
from ringzero.plan import policies_plan
from ringzero.playbook import runner_args
from ringzero.spec import HostSpec, NodePolicies, SliceSpec

MAX_ARG_STRLEN = 128 * 1024
MARKER = "ringzero-marker-in-every-unit"


# Ansible templates `{{ }}` in extra vars: a plan's values must arrive as declared.
JINJA_LOOKALIKE = "{{ 6*7 }} {{ lookup('env', 'HOME') }} {# c #}"


def _big_plan(n: int = 500) -> dict[str, Any]:
    slices = tuple(SliceSpec(f"rzscale{i}.slice", description=f"{MARKER} {i} {JINJA_LOOKALIKE} " + "x" * 120,
                             cpu_weight=100, memory_max="512M") for i in range(n))
    return dict(policies_plan(NodePolicies("n1", slices=slices), HostSpec("n1")))


def test_the_command_holds_no_plan_content_and_the_file_is_private(tmp_path: Path) -> None:
    plan = _big_plan()
    extravars = {"ringzero_plan": plan, "ringzero_state": "present"}
    assert len(json.dumps(extravars)) > MAX_ARG_STRLEN
    with keyfiles.private_tempdir("rz-test-", base=tmp_path) as tmp:
        args = runner_args(tmp, tmp / "site.yml", {"all": {"hosts": {"n1": {}}}}, extravars, check=False)
        command = init_runner(**args).config.command
        extravars_file = tmp / "env" / "extravars"
        assert command[command.index("-e") + 1] == f"@{extravars_file}"
        assert not any(MARKER in arg or "ringzero_plan" in arg for arg in command), command
        assert max(len(arg.encode()) for arg in command) < 4096
        assert yaml.safe_load(extravars_file.read_text().replace("!unsafe", "")) == extravars
        assert stat.S_IMODE(extravars_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp / "env").stat().st_mode) == 0o700
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o700


def test_a_plan_over_128_kib_reaches_the_play_whole(tmp_path: Path) -> None:
    plan = _big_plan()
    size = len(json.dumps(plan))
    assert size > MAX_ARG_STRLEN
    playbook = tmp_path / "echo.yml"
    playbook.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Ensure the whole plan arrived\n"
        "      ansible.builtin.assert:\n"
        "        that:\n"
        "          - ringzero_plan.files | length == 500\n"
        "          - ringzero_plan.slices[499].unit == 'rzscale499.slice'\n"
        "          - ringzero_plan.files[ringzero_plan.slices[7].path].mode == '0644'\n"
        f"          - (ringzero_plan | to_json | length) >= {size}\n"
        "    - name: Write one unit file's content as it arrived\n"
        "      ansible.builtin.copy:\n"
        "        content: '{{ ringzero_plan.files[ringzero_plan.slices[7].path].content }}'\n"
        f"        dest: {tmp_path / 'received'}\n"
        "        mode: '0600'\n"
    )
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inv = {"all": {"hosts": {"localhost": local}}}
    env = {"ANSIBLE_NOCOLOR": "True", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    with keyfiles.private_tempdir("rz-test-", base=tmp_path) as tmp:
        r = ansible_runner.run(**runner_args(tmp, playbook, inv, {"ringzero_plan": plan}, check=False), quiet=True,
                               envvars=env)
        out = r.stdout.read() if r.stdout else ""
        assert r.rc == 0 and r.status == "successful", out[-2000:]
        assert "All assertions passed" in out
        # what looks like Jinja in a declared value is never templated on the way
        sent = plan["files"][plan["slices"][7]["path"]]["content"]
        assert JINJA_LOOKALIKE in sent and (tmp_path / "received").read_text() == sent
        assert not any(MARKER in a for a in r.config.command)
