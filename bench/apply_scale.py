"""Applying a node's plan vs its policy count (10, 100, 500), each beside the floor measured in
the same run: one SSH session running a plain shell script that makes the same writes, one
daemon-reload, loads the profiles and enables/starts/restarts the same units (tests/scale.py),
with nothing compared, recorded or reported. Goal: at most 1.5x the floor.

Each size starts from a clean guest: the floor applies and its script removes again, then
ringzero applies (run_playbook, as PlaybookRun runs it: the ansible-runner worker, one
ansible-playbook, one module run), runs again (nothing to change) and removes (state=absent).
An empty plan's run is the fixed cost of one apply (worker, ansible-playbook, SSH, module
transfer) and is printed with the rest.

    flock /tmp/rz-guest.lock .venv/bin/python bench/apply_scale.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ringzero.plan import empty_plan, policies_plan  # noqa: E402
from ringzero.plan_schema import NodePlan  # noqa: E402
from ringzero.playbook import run_playbook  # noqa: E402
from ringzero.spec import HostSpec  # noqa: E402
from ringzero.ssh import ssh_options  # noqa: E402
from tests.handboot import HandGuest, hand_booted  # noqa: E402
from tests.scale import floor_apply_script, floor_remove_script, scale_policies  # noqa: E402

PORT = 2295
SIZES = (10, 100, 500)
NODE = "bench"


def floor(guest: HandGuest, script: str) -> float:
    argv = ["ssh", *ssh_options(str(guest.key_file), str(guest.known_hosts), PORT), "root@127.0.0.1", "sh -s"]
    t0 = time.monotonic()
    res = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=1800)
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return took


def ours(guest: HandGuest, plan: NodePlan, state: str = "present") -> tuple[float, int]:
    t0 = time.monotonic()
    r = run_playbook(guest.node | {"name": NODE}, guest.private_key, {"ringzero_plan": plan, "ringzero_state": state})
    took = time.monotonic() - t0
    assert r.ok, r.failures
    return took, len(r.changes)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="rz-bench-apply-") as d, \
            hand_booted("rz-bench-apply", PORT, Path(d) / "guest") as guest:
        fixed, _ = ours(guest, empty_plan(NODE))
        fixed, _ = ours(guest, empty_plan(NODE))  # the first run also creates the ledger
        for n in SIZES:
            plan = policies_plan(scale_policies(NODE, n), HostSpec(NODE))
            floor_s = floor(guest, floor_apply_script(plan))
            floor(guest, floor_remove_script(plan))
            apply_s, changes = ours(guest, plan)
            noop_s, noop_changes = ours(guest, plan)
            assert noop_changes == 0
            remove_s, _ = ours(guest, plan, "absent")
            rows.append({"policies": n, "files": len(plan["files"]),
                         "units": len(plan["units"]) + len(plan["slices"]), "profiles": len(plan["apparmor"]),
                         "plan_kib": round(len(json.dumps(plan)) / 1024), "floor_s": round(floor_s, 1),
                         "apply_s": round(apply_s, 1), "ratio": round(apply_s / floor_s, 2),
                         "noop_s": round(noop_s, 1), "remove_s": round(remove_s, 1), "changes": changes})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nfixed cost of one apply (empty plan: worker, ansible-playbook, SSH, module): {fixed:.1f} s")
    print("| policies | files | units | profiles | plan KiB | floor (one SSH script) | ringzero apply | ratio "
          "| no-op re-run | removal |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['policies']} | {r['files']} | {r['units']} | {r['profiles']} | {r['plan_kib']} "
              f"| {r['floor_s']} s | {r['apply_s']} s | **{r['ratio']}x** | {r['noop_s']} s | {r['remove_s']} s |")


if __name__ == "__main__":
    main()
