"""VmSpec: a virtual machine on a declared host, from a declared base image."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._check import Ctx

BOOT_MODES = ("kernel", "bootloader")
_CMDLINE_RE = re.compile(r"^[A-Za-z0-9_.,=/:+ -]*$")


@dataclass(frozen=True)
class VmSpec:
    """A VM. `name` is also its hostname (RFC 1123) and its libvirt domain name.

    Example::

        VmSpec(name="vm1", host="local", image="debian-12", vcpus=1, memory_mib=1024,
               ssh_port=2201)
    """

    name: str
    host: str
    image: str
    vcpus: int = 1
    memory_mib: int = 1024
    disk_gib: int | None = None
    # Host port on 127.0.0.1 forwarded to the guest's port 22 (QEMU user networking).
    # None: the guest gets no forward (bridged/NAT networking is the host's business).
    ssh_port: int | None = None
    boot: str = "kernel"
    kernel_args: str = ""
    running: bool = True
    ssh_user: str = "root"

    def __post_init__(self) -> None:
        ctx = Ctx("VirtualMachine", str(self.name))
        ctx.rfc1123("name", self.name)
        ctx.rfc1123("host", self.host)
        ctx.pattern("image", self.image, re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"), "a declared BaseImage name")
        ctx.int_range("vcpus", self.vcpus, 1, 512)
        ctx.int_range("memory_mib", self.memory_mib, 128, 4 * 1024 * 1024)
        if self.disk_gib is not None:
            ctx.int_range("disk_gib", self.disk_gib, 1, 65536)
        if self.ssh_port is not None:
            ctx.int_range("ssh_port", self.ssh_port, 1024, 65535)
        ctx.choice("boot", self.boot, BOOT_MODES)
        ctx.pattern(
            "kernel_args", self.kernel_args, _CMDLINE_RE,
            "kernel parameters of letters, digits, spaces and _ . , = / : + -",
        )
        ctx.pattern("ssh_user", self.ssh_user, re.compile(r"^[a-z_][a-z0-9_-]{0,31}$"), "a POSIX user name")
