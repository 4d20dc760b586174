"""The check tier: `ringzero check` from a fresh venv holding only the built wheel, against this
machine (local://) and against guests booted by hand (qemu-system, no libvirt, no Pulumi).

Guests, booted one after another once for the tier (TCG here, about a minute each):
- `good`: a KVM host (`-cpu max` gives the TCG guest AMD SVM, so kvm_amd loads and /dev/kvm
  exists) hardened by hand over SSH: it passes every control; runtime negative controls break
  one control at a time on it and put it back.
- `legacy`, `nopids`, `noaa`: the same image booted with a kernel command line that breaks
  one boot-time control each (cgroup v1 hierarchy; no pids controller; AppArmor off).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures import wheel_in_fresh_venv
from tests.handboot import HandGuest, hand_booted

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports" / "check"  # kept as CI artifacts (HTML report, its screenshot)

# What an operator would do by hand to make the image pass the baseline (none of it is ringzero).
HARDEN = r"""
set -e
sysctl -q -w kernel.yama.ptrace_scope=1 kernel.unprivileged_userns_clone=0 kernel.unprivileged_bpf_disabled=2
sed -i 's/^security_driver = "none"/security_driver = "apparmor"/' /etc/libvirt/qemu.conf
if [ -e /sys/module/kvm_amd ]; then modprobe -r kvm_amd && modprobe kvm_amd nested=0 && udevadm settle; fi
"""
# name -> (port, qemu cpu model, extra kernel command line, the one control it breaks)
GUESTS: dict[str, tuple[int, str | None, str, str | None]] = {
    "good": (2251, "max", "", None),
    "legacy": (2252, None, "systemd.unified_cgroup_hierarchy=0", "RZ-CGROUP-1"),
    "nopids": (2253, None, "cgroup_disable=pids", "RZ-CGROUP-2"),
    "noaa": (2254, None, "apparmor=0", "RZ-APPARMOR-1"),
}


@dataclass
class Cli:
    """The `ringzero` console script of a venv that has only `<wheel>[check]` installed."""

    exe: Path
    venv: Path
    workdir: Path

    def __call__(self, *args: str | Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin"
        return subprocess.run([str(self.exe), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                              cwd=self.workdir, env=env)


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    tmp = tmp_path_factory.mktemp("wheel")
    _, venv = wheel_in_fresh_venv(tmp, extras="check")  # what `ringzero check` needs: no Pulumi, no Ansible
    exe = venv / "bin" / "ringzero"
    assert exe.is_file(), "the wheel installs no `ringzero` console script"
    work = tmp / "work"  # nothing of the checkout is importable from here
    work.mkdir()
    return Cli(exe, venv, work)


@pytest.fixture(scope="session")
def cli_ansible(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """`ringzero` from `<wheel>[check,ansible]`: reading an inventory takes Ansible."""
    tmp = tmp_path_factory.mktemp("wheel-ansible")
    _, venv = wheel_in_fresh_venv(tmp, extras="check,ansible")
    work = tmp / "work"
    work.mkdir()
    return Cli(venv / "bin" / "ringzero", venv, work)


@dataclass
class Fleet:
    guests: dict[str, HandGuest]
    dir: Path

    @property
    def known_hosts(self) -> Path:
        path = self.dir / "known_hosts"
        path.write_text("".join(g.known_hosts_line + "\n" for g in self.guests.values()))
        return path

    def inventory(self, with_local: bool = True) -> Path:
        lines = ["[guests]"] + [
            f"{name} ansible_host=127.0.0.1 ansible_port={g.port} ansible_user=root "
            f"ansible_ssh_private_key_file={g.key_file}" for name, g in self.guests.items()]
        if with_local:
            lines += ["[me]", "self ansible_connection=local"]
        path = self.dir / "inventory.ini"
        path.write_text("\n".join(lines) + "\n")
        return path


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("fleet")
    with ExitStack() as stack:
        guests: dict[str, HandGuest] = {}
        for name, (port, cpu, append, _) in GUESTS.items():  # one boot at a time: 2 cores
            g = stack.enter_context(hand_booted(f"rz-check-{name}", port, tmp / name, memory_mib=768,
                                                cpu=cpu, append=append))
            g.ssh(HARDEN)
            guests[name] = g
        yield Fleet(guests, tmp)
