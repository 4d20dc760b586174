"""`ringzero check --baseline isolation` on one guest vs the floor: one SSH session running the
same reads as one shell script. One run, both measured (medians of 5); prints both and the ratio
(goal: at most 2x), and the part of ours that is Python starting and importing.

The floor's script comes from the catalogue (every read of every control: `cat`, `stat`,
`stat -f`), so it reads exactly what the baseline reads, and nothing else.

    .venv/bin/python bench/check.py
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ringzero.checks.baseline import load_catalogue  # noqa: E402
from ringzero.ssh import ssh_options  # noqa: E402
from tests.check.conftest import HARDEN  # noqa: E402
from tests.handboot import hand_booted  # noqa: E402

PORT = 2294
RUNS = 5


def floor_script() -> str:
    reads = sorted({k for c in load_catalogue().baseline("isolation").controls for k in c.reads()})
    cmd = {"file": "cat -- {}", "stat": "stat -c '%a %U %G' -- {}", "fstype": "stat -f -c %T -- {}"}
    lines = [cmd[k.split(":", 1)[0]].format(shlex.quote(k.split(":", 1)[1])) + " 2>/dev/null" for k in reads]
    return "\n".join(lines) + "\n"


def timed(argv: list[str], stdin: str | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.monotonic()
    res = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=300)
    return time.monotonic() - t0, res


def main() -> None:
    script = floor_script()
    with tempfile.TemporaryDirectory(prefix="rz-bench-check-") as d, \
            hand_booted("rz-bench-check", PORT, Path(d) / "guest", cpu="max") as guest:
        guest.ssh(HARDEN)
        ours = [sys.executable, "-m", "ringzero.cli", "check", "--hosts", f"bench=ssh://root@127.0.0.1:{PORT}",
                "--baseline", "isolation", "-i", str(guest.key_file), "--known-hosts", str(guest.known_hosts), "-q"]
        floor = ["ssh", *ssh_options(str(guest.key_file), str(guest.known_hosts), PORT), "root@127.0.0.1", "sh -s"]
        ours_s, floor_s, import_s = [], [], []
        for _ in range(RUNS):
            t, res = timed(ours)
            assert res.returncode == 0, res.stdout + res.stderr  # the hardened guest passes: a full green run
            ours_s.append(t)
            t, res = timed(floor, script)
            assert res.stdout.strip(), res.stderr
            floor_s.append(t)
            t, res = timed([sys.executable, "-c", "import ringzero.cli"])
            assert res.returncode == 0, res.stderr
            import_s.append(t)
    a, b, imp = statistics.median(ours_s), statistics.median(floor_s), statistics.median(import_s)
    out = {"controls": len(load_catalogue().baseline("isolation").controls), "reads": script.count("\n"),
           "ringzero_check_s": round(a, 2), "floor_one_ssh_script_s": round(b, 2), "ratio": round(a / b, 2),
           "python_start_and_import_s": round(imp, 2)}
    print(json.dumps(out))
    print(f"ringzero check --baseline isolation (one guest): {a:.2f} s; one SSH session running the same "
          f"{out['reads']} reads: {b:.2f} s; ratio {a / b:.2f}x (goal <= 2x); of ours, Python start + imports "
          f"{imp:.2f} s")


if __name__ == "__main__":
    main()
