"""The compliance suite on one node vs the floor: one SSH session running the same reads and
probes as one shell script. One run, both measured (medians of 3); prints both and the ratio.

The floor's script is not written by hand: the checks run once through a recording host,
and every command they sent (the batched reads, the denied read, the filtered syscall, the
traced exec) becomes one line of the script.

    eval "$(make -s env)"; .venv/bin/python bench/compliance.py
"""

from __future__ import annotations

import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import testinfra  # noqa: E402

from ringzero.checks import Probe, expectations  # noqa: E402
from ringzero.compliance import run_compliance  # noqa: E402
from ringzero.plan import node_plan  # noqa: E402
from ringzero.playbook import run_playbook  # noqa: E402
from ringzero.spec import Topology, to_manifest  # noqa: E402
from ringzero.ssh import ssh_options  # noqa: E402
from tests.fixtures import local_topology  # noqa: E402
from tests.handboot import HandGuest, hand_booted  # noqa: E402

PORT = 2293
NODE = "vm1"


class Recording:
    """A testinfra host that remembers every command it ran, as a shell line."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.lines: list[str] = []

    def run(self, command: str, *args: str) -> Any:
        self.lines.append(command % tuple(shlex.quote(a) for a in args) if args else command)
        return self.host.run(command, *args)


def recorded_script(guest: HandGuest, topology: Topology, tmp: Path) -> str:
    cfg = tmp / "ssh_config"
    cfg.write_text(f"Host *\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {guest.known_hosts}\n")
    host = Recording(testinfra.get_host(guest.url, ssh_config=str(cfg), ssh_identity_file=str(guest.key_file)))
    probe = Probe(host, NODE)
    checks = expectations(topology, {NODE})
    probe.fetch(k for c in checks for k in c.reads)
    for c in checks:
        c.verify(probe)  # all pass on the converged node: the script is what a green run reads
    return "\n".join(f"{line} >/dev/null 2>&1" for line in host.lines) + "\n"


def main() -> None:
    topology = local_topology()
    with tempfile.TemporaryDirectory(prefix="rz-bench-compliance-") as d:
        tmp = Path(d)
        with hand_booted("rz-bench-check", PORT, tmp / "guest") as guest:
            conn = {**guest.node, "name": NODE}
            r = run_playbook(conn, guest.private_key, {"ringzero_plan": node_plan(topology, NODE)})
            assert r.ok, r.failures
            script = recorded_script(guest, topology, tmp)
            manifest = json.dumps(to_manifest(topology))
            suite_s, floor_s = [], []
            for i in range(3):
                t0 = time.monotonic()
                counts = run_compliance(manifest, [conn], guest.private_key, str(tmp / f"report-{i}.xml"))
                suite_s.append(time.monotonic() - t0)
                assert counts.failed == counts.errors == 0, counts.failures
                t0 = time.monotonic()
                res = subprocess.run(
                    ["ssh", *ssh_options(str(guest.key_file), str(guest.known_hosts), PORT), "root@127.0.0.1", "sh -s"],
                    input=script, capture_output=True, text=True, timeout=300)
                floor_s.append(time.monotonic() - t0)
                assert res.returncode == 0, res.stderr
    suite, floor = statistics.median(suite_s), statistics.median(floor_s)
    out = {"checks": counts.passed, "commands_in_floor_script": script.count("\n"), "suite_s": round(suite, 2),
           "floor_one_ssh_script_s": round(floor, 2), "ratio": round(suite / floor, 2)}
    print(json.dumps(out))
    print(f"compliance suite ({counts.passed} checks on {NODE}): {suite:.1f} s; one SSH session running the same "
          f"{out['commands_in_floor_script']} commands: {floor:.1f} s; ratio {suite / floor:.2f}x")


if __name__ == "__main__":
    main()
