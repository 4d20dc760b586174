"""HostSpec: a hypervisor host (KVM or Xen) reached through a libvirt URI."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._check import Ctx

HYPERVISOR_KINDS = ("kvm", "xen")
# Domain types a host of each kind may run; 'qemu' is KVM's TCG fallback (no acceleration).
DOMAIN_TYPES = {"kvm": ("kvm", "qemu"), "xen": ("xen",)}
_URI_SCHEMES = {
    "kvm": ("qemu", "qemu+ssh", "qemu+tls", "qemu+unix", "test"),
    "xen": ("xen", "xen+ssh", "xen+tls", "xen+unix", "test"),
}
_URI_RE = re.compile(
    r"^(?P<scheme>[a-z]+(?:\+[a-z]+)?)://"
    r"(?:(?P<user>[a-z_][a-z0-9_-]*)@)?"
    r"(?P<host>[A-Za-z0-9.-]*|\[[0-9a-fA-F:]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<path>/(?:system|session|default|[A-Za-z0-9_./-]*))"
    r"(?:\?(?P<query>[A-Za-z0-9_=&.,/-]*))?$"
)
# libvirt's remote URI parameters (docs/uri.rst, "Extra parameters"): the harmless ones and
# what each may be. Refused: no_verify (skips the host key or TLS certificate check),
# known_hosts_verify other than normal (auto accepts new host keys, ignore skips the check),
# command (a local program libvirt runs instead of ssh), netcat (a program run on the remote
# host), socket (another daemon's socket, passed into the remote command line), name (the URI
# the remote end opens, bypassing the scheme check), tls_priority (can re-enable weak TLS).
_PATH = re.compile(r"^/[A-Za-z0-9_./-]+$")
_URI_PARAMS: dict[str, tuple[re.Pattern[str], str]] = {
    "keyfile": (_PATH, "an absolute path"),
    "known_hosts": (_PATH, "an absolute path"),
    "pkipath": (_PATH, "an absolute path"),
    "known_hosts_verify": (re.compile(r"^normal$"), "'normal' (auto and ignore weaken host-key checking)"),
    "no_tty": (re.compile(r"^[01]$"), "0 or 1"),
    "mode": (re.compile(r"^(auto|direct|legacy)$"), "auto, direct or legacy"),
    "proxy": (re.compile(r"^(auto|netcat|native)$"), "auto, netcat or native"),
    "sshauth": (re.compile(r"^(?:agent|privkey|password|keyboard-interactive)(?:,(?:agent|privkey|password|"
                           r"keyboard-interactive))*$"),
                "a comma separated list of agent, privkey, password, keyboard-interactive"),
}
_REFUSED_PARAMS = {
    "no_verify": "it switches off the host key or certificate check",
    "command": "it runs a local program instead of ssh",
    "netcat": "it runs a named program on the remote host",
    "socket": "it points the connection at another socket through the remote command line",
    "name": "it overrides the URI the remote end opens",
    "tls_priority": "it can re-enable weak TLS versions and ciphers",
}


@dataclass(frozen=True)
class HostSpec:
    """A hypervisor host with declared capacity.

    Example::

        HostSpec(name="local", kind="kvm", uri="qemu:///system", vcpus=2, memory_mib=8192,
                 domain_type="qemu")
    """

    name: str
    kind: str = "kvm"
    uri: str = "qemu:///system"
    vcpus: int = 1
    memory_mib: int = 1024
    cpu_overcommit: float = 1.0
    memory_overcommit: float = 1.0
    domain_type: str | None = None
    pool: str = "default"
    nested_virt: bool = False
    # Xen dom0 memory (host prep), ignored for KVM.
    dom0_memory_mib: int = 2048
    # This host's libvirtd runs inside `via_vm`, a VM of the same declaration: ringzero
    # connects over SSH with the stack's access key and that VM's pinned host key.
    via_vm: str | None = None

    def __post_init__(self) -> None:
        ctx = Ctx("HypervisorHost", str(self.name))
        ctx.rfc1123("name", self.name)
        ctx.choice("kind", self.kind, HYPERVISOR_KINDS)
        m = _URI_RE.fullmatch(self.uri) if isinstance(self.uri, str) else None
        schemes = _URI_SCHEMES[self.kind]
        uri_allowed = (
            f"a libvirt URI for a {self.kind} host: scheme one of {', '.join(schemes)}, "
            "e.g. 'qemu:///system' or 'qemu+ssh://root@127.0.0.1:2222/system'"
        )
        if not m or m["scheme"] not in schemes:
            raise ctx.fail("uri", self.uri, uri_allowed)
        if m["port"] and not 1 <= int(m["port"]) <= 65535:
            raise ctx.fail("uri", self.uri, uri_allowed)
        if "+ssh" in m["scheme"] and not m["host"]:
            raise ctx.fail("uri", self.uri, uri_allowed + " (ssh transports need a host)")
        self._check_query(ctx, m["query"] or "")
        ctx.int_range("vcpus", self.vcpus, 1, 4096)
        ctx.int_range("memory_mib", self.memory_mib, 128)
        ctx.positive_number("cpu_overcommit", self.cpu_overcommit, 1.0, 16.0)
        ctx.positive_number("memory_overcommit", self.memory_overcommit, 1.0, 4.0)
        if self.domain_type is not None:
            ctx.choice("domain_type", self.domain_type, DOMAIN_TYPES[self.kind])
        ctx.pattern("pool", self.pool, re.compile(r"^[A-Za-z0-9_.-]{1,64}$"), "a libvirt pool name")
        ctx.int_range("dom0_memory_mib", self.dom0_memory_mib, 512)
        if self.via_vm is not None:
            ctx.rfc1123("via_vm", self.via_vm)
            if not m["scheme"].endswith("+ssh") or m["host"] != "127.0.0.1" or not m["port"] or m["query"]:
                raise ctx.fail(
                    "uri", self.uri,
                    "with via_vm, 'qemu+ssh://<user>@127.0.0.1:<the VM's ssh_port>/system' "
                    "(ringzero adds the key and known_hosts itself)",
                )

    def _check_query(self, ctx: Ctx, query: str) -> None:
        """Every URI parameter known, harmless and given once."""
        allowed = ("URI parameters among " + ", ".join(f"{k} ({v[1]})" for k, v in _URI_PARAMS.items())
                   + "; each once; never " + ", ".join(_REFUSED_PARAMS))
        seen: set[str] = set()
        for part in query.split("&") if query else ():
            key, sep, value = part.partition("=")
            if key in _REFUSED_PARAMS:
                raise ctx.fail("uri", self.uri, f"a URI without {key}= ({_REFUSED_PARAMS[key]}); {allowed}")
            if key not in _URI_PARAMS or not sep or key in seen:
                raise ctx.fail("uri", self.uri, allowed)
            if not _URI_PARAMS[key][0].fullmatch(value) or "/../" in value + "/":
                raise ctx.fail("uri", self.uri, f"{key}= {_URI_PARAMS[key][1]} (paths without '..'); {allowed}")
            seen.add(key)

    @property
    def effective_domain_type(self) -> str:
        """`kvm` for KVM hosts and `xen` for Xen hosts unless explicitly overridden."""
        return self.domain_type or DOMAIN_TYPES[self.kind][0]

    @property
    def uri_port(self) -> int | None:
        m = _URI_RE.fullmatch(self.uri)
        return int(m["port"]) if m and m["port"] else None
