"""Policy benchmarks under the real engine, each a ratio measured in one run.

1. No-op `pulumi up` of the reference stack vs a stack of as many plain dynamic resources
   (the engine's floor), medians of 5, the two alternating; plus how many Ansible runs and SSH logins the no-op
   caused on the guests (goal: 0 Ansible runs; vm1 sees no SSH at all).
2. Applying all of vm1's policies through `pulumi up` (program, engine, PlaybookRun) vs
   `ansible-playbook` of the same play with the same SSH settings run directly, each from a
   clean guest (policies removed before).

    eval "$(make -s env)"; .venv/bin/python bench/policies.py [--noop-only]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ringzero.paths import playbooks_dir  # noqa: E402
from ringzero.plan import node_plan  # noqa: E402
from ringzero.playbook import inventory, ssh_env  # noqa: E402
from ringzero.spec import from_manifest  # noqa: E402
from tests.e2e.conftest import Stack, e2e_config  # noqa: E402
from tests.engine.conftest import make_project  # noqa: E402

FLOOR_PROGRAM = '''
import pulumi.dynamic as dyn

class Noop(dyn.ResourceProvider):
    def create(self, props):
        return dyn.CreateResult(id_="x", outs=props)

    def diff(self, _id, olds, news):
        return dyn.DiffResult(changes=olds != news)

class Thing(dyn.Resource):
    def __init__(self, name, i):
        super().__init__(Noop(), name, {"i": i})

for i in range(int(__import__("os").environ["RZ_BENCH_N"])):
    Thing(f"thing-{i}", i)
'''


NOOP_ROUNDS = 5


def timed(fn: Any) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def resource_count(stack: Stack) -> int:
    state = json.loads(stack.project.pulumi("stack", "export").stdout)
    return len(state["deployment"]["resources"])


def noop_ratio(stack: Stack, tmp: Path) -> dict[str, Any]:
    vm1, vm2 = stack.guest("vm1"), stack.guest("vm2")

    def snapshot() -> dict[str, Any]:
        # SSH logins first: that count includes its own login, not the Ansible count's after it
        ssh = {"vm1_ssh": vm1.ssh_logins(), "vm2_ssh": vm2.ssh_logins()}
        return {**ssh, "ansible": [vm1.ansible_runs(), vm2.ansible_runs()]}

    n = resource_count(stack)
    floor_dir = tmp / "floor"
    floor_dir.mkdir()
    floor = make_project(floor_dir, FLOOR_PROGRAM, {}, name="rzfloor")
    floor.env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user's machine runs Python (see main)
    floor.env["RZ_BENCH_N"] = str(n - 2)  # the Stack resource and the dynamic provider exist in both
    floor.pulumi("up", "--yes")
    # alternating, so that a change in the machine's load weighs on both sides alike; the floor's
    # ups touch no guest, so the counts around the loop are the reference stack's no-ops'
    noop: list[float] = []
    floor_noop: list[float] = []
    before = snapshot()
    for _ in range(NOOP_ROUNDS):
        noop.append(timed(lambda: stack.project.pulumi("up", "--yes", "--expect-no-changes")))
        floor_noop.append(timed(lambda: floor.pulumi("up", "--yes", "--expect-no-changes")))
    after = snapshot()
    # a count includes its own login; `after`'s also includes the Ansible-count login of
    # `before` and its own: neither is a no-op up's
    after["vm1_ssh"] -= 2
    after["vm2_ssh"] -= 2
    floor.pulumi("destroy", "--yes")
    return {
        "resources": n,
        "noop_up_s": round(statistics.median(noop), 2),
        "floor_noop_up_s": round(statistics.median(floor_noop), 2),
        "ratio": round(statistics.median(noop) / statistics.median(floor_noop), 2),
        "ansible_runs_during_noop": [a - b for a, b in zip(after["ansible"], before["ansible"], strict=True)],
        # per no-op up; vm2 runs libvirtd for host vm2-libvirt: pulumi-libvirt connects over qemu+ssh
        "ssh_logins_per_noop_up": {"vm1": (after["vm1_ssh"] - before["vm1_ssh"]) / NOOP_ROUNDS,
                                   "vm2": (after["vm2_ssh"] - before["vm2_ssh"]) / NOOP_ROUNDS},
        "noop_runs_s": [round(t, 2) for t in noop],
        "floor_runs_s": [round(t, 2) for t in floor_noop],
    }


def apply_ratio(stack: Stack, tmp: Path) -> dict[str, Any]:
    """vm1's policies: `pulumi up` applying them vs ansible-playbook directly, both from clean."""
    full = list(stack.config["ringzero:nodes"])
    topology = from_manifest(json.loads(stack.outputs()["manifest"]))
    stack.config["ringzero:compliance"] = False
    stack.config["ringzero:nodes"] = []
    stack.write_config()
    stack.project.pulumi("up", "--yes", timeout=900)  # removes every policy
    stack.config["ringzero:nodes"] = [n for n in full if n["node"] == "vm1"]
    stack.write_config()
    t_pulumi = timed(lambda: stack.project.pulumi("up", "--yes", timeout=900))
    stack.config["ringzero:nodes"] = []
    stack.write_config()
    stack.project.pulumi("up", "--yes", timeout=900)
    vm1 = stack.guest("vm1")
    outs = stack.outputs()
    work = tmp / "ansible"
    work.mkdir()
    key = work / "key"
    key.write_text(outs["access_private_key"])
    key.chmod(0o600)
    kh = work / "known_hosts"
    kh.write_text(outs["vms"]["vm1"]["known_hosts"] + "\n")
    node = {"name": "vm1", "host": "127.0.0.1", "port": vm1.port, "user": "root"}
    (work / "inventory.json").write_text(json.dumps(inventory(node, str(key))))
    (work / "vars.json").write_text(json.dumps({"ringzero_plan": node_plan(topology, "vm1")}))
    env = {**os.environ, **ssh_env(str(work), str(kh))}
    t_ansible = timed(lambda: subprocess.run(
        ["ansible-playbook", "-i", str(work / "inventory.json"), "-e", f"@{work / 'vars.json'}",
         str(playbooks_dir() / "site.yml")], env=env, check=True, capture_output=True, text=True, timeout=900))
    return {"pulumi_up_apply_s": round(t_pulumi, 1), "ansible_playbook_s": round(t_ansible, 1),
            "ratio": round(t_pulumi / t_ansible, 2)}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rz-bench-policies-") as d:
        tmp = Path(d)
        config = e2e_config()
        project = make_project(tmp, (ROOT / "__main__.py").read_text(), config, name="ringzero")
        # Python writes and reuses bytecode (__pycache__) unless told not to; a development shell
        # that sets PYTHONDONTWRITEBYTECODE would make every program run compile ringzero's
        # modules again (~80 ms each time), which no user's run does. Both stacks run without it.
        project.env.pop("PYTHONDONTWRITEBYTECODE", None)
        stack = Stack(project, config, tmp)
        try:
            project.pulumi("up", "--yes", timeout=1800)
            noop = noop_ratio(stack, tmp)
            apply = apply_ratio(stack, tmp) if "--noop-only" not in sys.argv[1:] else None
        finally:
            project.pulumi("destroy", "--yes", check=False, timeout=900)
    print(json.dumps({"noop": noop, "apply": apply}, indent=1))
    print(f"no-op pulumi up: {noop['noop_up_s']} s vs {noop['floor_noop_up_s']} s for {noop['resources']} plain "
          f"dynamic resources: {noop['ratio']}x; Ansible runs {noop['ansible_runs_during_noop']}, "
          f"SSH logins per no-op up {noop['ssh_logins_per_noop_up']}")
    if apply is not None:
        print(f"apply vm1's policies: pulumi up {apply['pulumi_up_apply_s']} s vs ansible-playbook "
              f"{apply['ansible_playbook_s']} s: {apply['ratio']}x")


if __name__ == "__main__":
    main()
