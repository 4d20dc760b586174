"""Boot to SSH: `pulumi up` of one VM vs qemu-system-x86_64 booting the same thing by hand.

Both boot the project's image (direct kernel boot, same kernel, 1 vcpu, 1024 MiB, TCG here)
with the same cloud-init seed content, and stop the clock when `ssh root@127.0.0.1 true`
succeeds with the pinned host key. One run, both measured; prints both and the ratio.

    eval "$(make -s env)"; .venv/bin/python bench/boot.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine.conftest import make_project, reference_config  # noqa: E402
from tests.handboot import hand_booted  # noqa: E402

MEMORY_MIB = 1024
FLOOR_PORT = 2291
PULUMI_PORT = 2292


def floor(tmp: Path) -> float:
    with hand_booted("bench-floor", FLOOR_PORT, tmp, memory_mib=MEMORY_MIB) as guest:
        return guest.boot_s


def with_pulumi(tmp: Path) -> float:
    config = reference_config()
    config["ringzero:vms"] = [{"name": "bench-vm", "host": "local", "image": "debian-12", "vcpus": 1,
                               "memory_mib": MEMORY_MIB, "ssh_port": PULUMI_PORT}]
    config["ringzero:nodes"] = []
    config["ringzero:hosts"] = [h for h in config["ringzero:hosts"] if h["name"] == "local"]
    config["ringzero:images"] = [i for i in config["ringzero:images"] if i["host"] == "local"]
    project = make_project(tmp, (ROOT / "__main__.py").read_text(), config, name="ringzero")
    try:
        t0 = time.monotonic()
        project.pulumi("up", "--yes", timeout=1200)  # returns once SshReady saw SSH answer
        return time.monotonic() - t0
    finally:
        project.pulumi("destroy", "--yes", check=False, timeout=900)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rz-bench-floor-") as a, tempfile.TemporaryDirectory(
        prefix="rz-bench-up-"
    ) as b:
        t_floor = floor(Path(a))
        t_up = with_pulumi(Path(b))
    print(json.dumps({"floor_qemu_s": round(t_floor, 1), "pulumi_up_s": round(t_up, 1),
                      "ratio": round(t_up / t_floor, 2)}))
    print(f"qemu by hand: {t_floor:.1f} s to SSH; pulumi up: {t_up:.1f} s to SSH; ratio {t_up / t_floor:.2f}x")


if __name__ == "__main__":
    main()
