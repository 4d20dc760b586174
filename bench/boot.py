"""Boot to SSH: `pulumi up` of one VM vs qemu-system-x86_64 booting the same thing by hand.

Both boot the project's image (direct kernel boot, same kernel, 1 vcpu, 1024 MiB, TCG here)
with the same cloud-init seed content, and stop the clock when `ssh root@127.0.0.1 true`
succeeds with the pinned host key. One run, both measured; prints both and the ratio.

    eval "$(make -s env)"; .venv/bin/python bench/boot.py
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

from ringzero.keys import generate_ed25519  # noqa: E402
from ringzero.render import render_cloud_init  # noqa: E402
from ringzero.spec import VmSpec  # noqa: E402
from ringzero.ssh import wait_for_ssh  # noqa: E402

from tests.engine.conftest import make_project, reference_config  # noqa: E402

MEMORY_MIB = 1024
FLOOR_PORT = 2291
PULUMI_PORT = 2292


def floor(tmp: Path) -> float:
    image = (ROOT / ".image").resolve()
    access, host_key = generate_ed25519("bench"), generate_ed25519("root@bench")
    vm = VmSpec("bench-floor", "local", "debian-12", memory_mib=MEMORY_MIB, ssh_port=FLOOR_PORT)
    ud, md = render_cloud_init(vm, authorized_keys=[access["public_key"]], host_key_private=host_key["private_key"],
                               host_key_public=host_key["public_key"], instance_id="bench-floor")
    (tmp / "user-data").write_text(ud)
    (tmp / "meta-data").write_text(md)
    subprocess.run(["genisoimage", "-quiet", "-output", str(tmp / "seed.iso"), "-volid", "cidata", "-joliet",
                    "-rock", str(tmp / "user-data"), str(tmp / "meta-data")], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image / "base.qcow2"), "-F", "qcow2",
                    str(tmp / "disk.qcow2")], check=True)
    t0 = time.monotonic()
    qemu = subprocess.Popen([
        "qemu-system-x86_64", "-accel", "tcg", "-m", str(MEMORY_MIB), "-smp", "1", "-display", "none",
        "-monitor", "none", "-serial", f"file:{tmp / 'console.log'}", "-no-reboot",
        "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
        "-append", "root=/dev/vda rw console=ttyS0",
        "-drive", f"file={tmp / 'disk.qcow2'},format=qcow2,if=virtio",
        "-drive", f"file={tmp / 'seed.iso'},format=raw,media=cdrom",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{FLOOR_PORT}-:22", "-device", "virtio-net-pci,netdev=n0",
    ])
    try:
        wait_for_ssh({"vm": vm.name, "host": "127.0.0.1", "port": FLOOR_PORT, "user": "root",
                      "private_key": access["private_key"], "host_public_key": host_key["public_key"],
                      "console_log": str(tmp / "console.log"), "timeout_s": 600})
        return time.monotonic() - t0
    finally:
        qemu.terminate()
        qemu.wait(timeout=60)


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
        project.pulumi("destroy", "--yes", "--run-program", check=False, timeout=900)


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
