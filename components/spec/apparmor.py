"""AppArmorProfileSpec: an AppArmor profile from structured rules or raw text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._check import Ctx

MODES = ("enforce", "complain")
FILE_PERMS_RE = re.compile(r"^(?!.*(.).*\1)[rwaklmx]+$|^(?!.*(.).*\2)[rwaklm]*(?:ix|px|Px|ux|Ux|cx|Cx)$")
FILE_PERMS_ALLOWED = (
    "AppArmor file permissions: letters of r w a k l m, each once, optionally ending in ix/px/Px/ux/Ux/cx/Cx"
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NAME_ALLOWED = (
    "1-128 characters of letters, digits and . _ - (no '/', spaces, braces or '#'), starting with a letter or digit"
)
CAPABILITIES = (
    "audit_control", "audit_read", "audit_write", "block_suspend", "bpf", "checkpoint_restore",
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "ipc_lock", "ipc_owner",
    "kill", "lease", "linux_immutable", "mac_admin", "mac_override", "mknod", "net_admin",
    "net_bind_service", "net_broadcast", "net_raw", "perfmon", "setfcap", "setgid", "setpcap",
    "setuid", "sys_admin", "sys_boot", "sys_chroot", "sys_module", "sys_nice", "sys_pacct",
    "sys_ptrace", "sys_rawio", "sys_resource", "sys_time", "sys_tty_config", "syslog", "wake_alarm",
)
NETWORK_FAMILIES = ("inet", "inet6", "unix", "netlink", "packet")
NETWORK_TYPES = ("stream", "dgram", "raw", "seqpacket")
ABSTRACTIONS = ("base", "nameservice", "openssl", "ssl_certs", "consoles", "python", "bash", "user-tmp")


@dataclass(frozen=True)
class FileRule:
    """`path perms,` (or `deny path perms,`). Example: ``FileRule("/srv/www/**", "r")``."""

    path: str
    perms: str
    deny: bool = False


@dataclass(frozen=True)
class NetworkRule:
    family: str
    type: str | None = None
    deny: bool = False


@dataclass(frozen=True)
class AppArmorProfileSpec:
    """A profile attached to an executable (or named only, for `aa-exec -p` and services).

    Example::

        AppArmorProfileSpec(name="ringzero-web", attach="/usr/bin/python3.11", mode="enforce",
                            files=(FileRule("/srv/www/**", "r"),),
                            capabilities=("net_bind_service",))
    """

    name: str
    mode: str = "enforce"
    attach: str | None = None
    abstractions: tuple[str, ...] = ("base",)
    files: tuple[FileRule, ...] = ()
    capabilities: tuple[str, ...] = ()
    network: tuple[NetworkRule, ...] = ()
    # Raw profile text replaces every structured rule; its profile name must be `name`.
    raw: str | None = None

    def __post_init__(self) -> None:
        ctx = Ctx("AppArmorProfile", str(self.name))
        ctx.pattern("name", self.name, _NAME_RE, NAME_ALLOWED)
        ctx.choice("mode", self.mode, MODES)
        if self.attach is not None:
            ctx.abs_path("attach", self.attach, globs=True)
        for i, a in enumerate(self.abstractions):
            ctx.choice(f"abstractions[{i}]", a, ABSTRACTIONS)
        for i, r in enumerate(self.files):
            ctx.abs_path(f"files[{i}].path", r.path, globs=True)
            ctx.pattern(f"files[{i}].perms", r.perms, FILE_PERMS_RE, FILE_PERMS_ALLOWED)
        for i, c in enumerate(self.capabilities):
            ctx.choice(f"capabilities[{i}]", c, CAPABILITIES)
        for i, n in enumerate(self.network):
            ctx.choice(f"network[{i}].family", n.family, NETWORK_FAMILIES)
            if n.type is not None:
                ctx.choice(f"network[{i}].type", n.type, NETWORK_TYPES)
        if self.raw is not None:
            if self.files or self.capabilities or self.network:
                raise ctx.fail("raw", "<text>", "raw text or structured rules, not both")
            if not isinstance(self.raw, str) or "\x00" in self.raw:
                raise ctx.fail("raw", self.raw, "profile text")
            header = re.search(r"^\s*profile\s+(\S+)", self.raw, re.MULTILINE)
            if not header or header.group(1) != self.name:
                raise ctx.fail(
                    "raw", header.group(1) if header else None,
                    f"text declaring 'profile {self.name} ...' (the profile name must match name)",
                )

    @property
    def file_name(self) -> str:
        """Where the profile lives on the node: /etc/apparmor.d/<file_name>."""
        return self.name
