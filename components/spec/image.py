"""BaseImageSpec: a local disk image uploaded once per host into a libvirt pool."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._check import Ctx

IMAGE_FORMATS = ("qcow2", "raw")
_VOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class BaseImageSpec:
    """A guest image; with `kernel`/`initrd` the VMs boot it directly (no bootloader).

    Example::

        BaseImageSpec(name="debian-12", host="local", source="/var/cache/ringzero/base.qcow2",
                      kernel="/var/cache/ringzero/vmlinuz", initrd="/var/cache/ringzero/initrd.img")
    """

    name: str
    host: str
    source: str
    format: str = "qcow2"
    kernel: str | None = None
    initrd: str | None = None
    root_device: str = "/dev/vda"

    def __post_init__(self) -> None:
        ctx = Ctx("BaseImage", str(self.name))
        ctx.pattern("name", self.name, _VOL_RE, "a volume name of letters, digits, '_', '.', '-'")
        ctx.rfc1123("host", self.host)
        # Canonical paths only: '..' or '.' would make the path name a file other than the one it
        # appears to (outside the project, for a relative path resolved against it).
        ctx.canonical_path("source", self.source)
        ctx.choice("format", self.format, IMAGE_FORMATS)
        if self.kernel is not None:
            ctx.canonical_path("kernel", self.kernel)
        if self.initrd is not None:
            ctx.canonical_path("initrd", self.initrd)
            if self.kernel is None:
                raise ctx.fail("initrd", self.initrd, "an initrd only together with a kernel")
        ctx.abs_path("root_device", self.root_device)

    @property
    def volume_name(self) -> str:
        return f"{self.name}.{self.format}"
