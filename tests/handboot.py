"""A guest booted by hand with qemu-system-x86_64 (no libvirt, no Pulumi): the project's
image, an overlay, a cloud-init seed with a fresh access key and pinned host key, SSH on
127.0.0.1. Used by benchmarks (the floor) and by tests that need a machine ringzero did not
build. Example::

    with hand_booted("rz-dev", port=2299, workdir=Path("/tmp/g")) as g:
        print(g.ssh("hostname"))
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ringzero.keys import generate_ed25519
from ringzero.render import render_cloud_init
from ringzero.spec import VmSpec
from ringzero.ssh import known_hosts_line, ssh_options, wait_for_ssh
from tests.fixtures import SSH_LOGINS

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class HandGuest:
    name: str
    port: int
    key_file: Path
    known_hosts: Path
    private_key: str
    known_hosts_line: str
    console_log: Path
    boot_s: float = 0.0

    @property
    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    @property
    def node(self) -> dict[str, object]:
        """The connection as PlaybookRun and ComplianceCheck take it."""
        return {"name": self.name, "host": "127.0.0.1", "port": self.port, "user": "root",
                "known_hosts": self.known_hosts_line}

    def run(self, command: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh", *ssh_options(str(self.key_file), str(self.known_hosts), self.port), "root@127.0.0.1", command],
            capture_output=True, text=True, timeout=timeout,
        )

    def ssh(self, command: str, timeout: int = 120) -> str:
        res = self.run(command, timeout)
        assert res.returncode == 0, f"{self.name}: {command}: rc={res.returncode} {res.stderr}"
        return res.stdout.strip()

    def ssh_logins(self) -> int:
        """SSH logins since boot, this one's own included (sshd logs it before running the command)."""
        return int(self.ssh(SSH_LOGINS))


@contextmanager
def hand_booted(name: str, port: int, workdir: Path, memory_mib: int = 1024, cpu: str | None = None,
                append: str = "") -> Iterator[HandGuest]:
    """`cpu`: a QEMU CPU model (`max` gives TCG guests AMD SVM, so kvm_amd loads inside them);
    `append`: extra kernel command line."""
    image = (ROOT / ".image").resolve()
    if not (image / "base.qcow2").exists():
        raise FileNotFoundError(f"no guest image at {image}: run `make setup`")
    workdir.mkdir(parents=True, exist_ok=True)
    access, host_key = generate_ed25519(f"ringzero@{name}"), generate_ed25519(f"root@{name}")
    vm = VmSpec(name, "local", "debian-12", memory_mib=memory_mib, ssh_port=port)
    ud, md = render_cloud_init(vm, authorized_keys=[access["public_key"]], host_key_private=host_key["private_key"],
                               host_key_public=host_key["public_key"], instance_id=f"hand-{name}")
    (workdir / "user-data").write_text(ud)
    (workdir / "meta-data").write_text(md)
    subprocess.run(["genisoimage", "-quiet", "-output", str(workdir / "seed.iso"), "-volid", "cidata", "-joliet",
                    "-rock", str(workdir / "user-data"), str(workdir / "meta-data")], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image / "base.qcow2"), "-F", "qcow2",
                    str(workdir / "disk.qcow2")], check=True)
    key = workdir / "access_key"
    key.write_text(access["private_key"])
    key.chmod(0o600)
    line = known_hosts_line("127.0.0.1", port, host_key["public_key"])
    (workdir / "known_hosts").write_text(line + "\n")
    console = workdir / "console.log"
    guest = HandGuest(name, port, key, workdir / "known_hosts", access["private_key"], line, console)
    t0 = time.monotonic()
    qemu = subprocess.Popen([
        "qemu-system-x86_64", "-name", name, "-accel", "tcg", "-m", str(memory_mib), "-smp", "1",
        "-display", "none", "-monitor", "none", "-serial", f"file:{console}", "-no-reboot",
        "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
        *(["-cpu", cpu] if cpu else []),
        "-append", f"root=/dev/vda rw console=ttyS0 {append}".strip(),
        "-drive", f"file={workdir / 'disk.qcow2'},format=qcow2,if=virtio",
        "-drive", f"file={workdir / 'seed.iso'},format=raw,media=cdrom",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22", "-device", "virtio-net-pci,netdev=n0",
    ])
    try:
        wait_for_ssh({"vm": name, "host": "127.0.0.1", "port": port, "user": "root",
                      "private_key": access["private_key"], "host_public_key": host_key["public_key"],
                      "console_log": str(console), "timeout_s": 600})
        guest.boot_s = time.monotonic() - t0
        yield guest
    finally:
        qemu.terminate()
        try:
            qemu.wait(timeout=60)
        except subprocess.TimeoutExpired:
            qemu.kill()


def saved_guest(workdir: Path) -> HandGuest:
    """A guest that `python -m tests.devguest` keeps running in `workdir` (for development:
    run a guest test against it with RINGZERO_DEV_GUEST=<workdir> instead of booting one)."""
    import json

    d = json.loads((workdir / "guest.json").read_text())
    return HandGuest(d["name"], d["port"], workdir / "access_key", workdir / "known_hosts",
                     (workdir / "access_key").read_text(), d["known_hosts_line"], workdir / "console.log")


@contextmanager
def dev_or_hand_booted(name: str, port: int, workdir: Path) -> Iterator[HandGuest]:
    """The dev guest named by RINGZERO_DEV_GUEST (a `tests.devguest` directory), or a guest
    booted for the caller. `make test` never sets it."""
    import os

    dev = os.environ.get("RINGZERO_DEV_GUEST")
    if dev:
        yield saved_guest(Path(dev))
        return
    with hand_booted(name, port, workdir) as guest:
        yield guest


@dataclass
class RunResult:
    rc: int
    stdout: str
    stderr: str


class GuestHost:
    """A hand-booted guest in testinfra's `Host.run` shape (`command % quoted args` over its SSH),
    so that a `ringzero.checks.Probe` can read it: `Probe(GuestHost(guest), "node")`."""

    def __init__(self, guest: HandGuest, timeout: int = 300) -> None:
        self.guest = guest
        self.timeout = timeout

    def run(self, command: str, *args: str) -> RunResult:
        import shlex

        line = command % tuple(shlex.quote(a) for a in args) if args else command
        res = self.guest.run(line, timeout=self.timeout)
        return RunResult(res.returncode, res.stdout, res.stderr)
