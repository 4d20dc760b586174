"""HostSpec: a hypervisor host (KVM, Xen, Hyper-V or bhyve) reached through a libvirt URI."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._check import Ctx

HYPERVISOR_KINDS = ("kvm", "xen", "hyperv", "bhyve")
# Domain types a host of each kind may run; 'qemu' is KVM's TCG fallback (no acceleration).
# libvirt's hyperv and bhyve drivers each parse one domain type only (VIR_DOMAIN_VIRT_HYPERV in
# hyperv_driver.c's DefineXML, VIR_DOMAIN_VIRT_BHYVE in bhyve_capabilities.c).
DOMAIN_TYPES = {"kvm": ("kvm", "qemu"), "xen": ("xen",), "hyperv": ("hyperv",), "bhyve": ("bhyve",)}
_URI_SCHEMES = {
    "kvm": ("qemu", "qemu+ssh", "qemu+tls", "qemu+unix", "test"),
    "xen": ("xen", "xen+ssh", "xen+tls", "xen+unix", "test"),
    # The hyperv driver is client side only (WS-Management over HTTP(S)): hypervConnectOpen
    # refuses 'hyperv+<transport>' (docs/drvhyperv.rst).
    "hyperv": ("hyperv",),
    # docs/drvbhyve.rst: bhyve:///system locally, bhyve+ssh://root@host/system remotely; the
    # remote driver's other transports reach the same daemon.
    "bhyve": ("bhyve", "bhyve+ssh", "bhyve+tls", "bhyve+unix"),
}
_URI_EXAMPLES = {
    "kvm": "e.g. 'qemu:///system' or 'qemu+ssh://root@127.0.0.1:2222/system'",
    "xen": "e.g. 'xen:///system' or 'xen+ssh://root@xen1.example/system'",
    "hyperv": "'hyperv://[user@]host[:port]/[?transport=https|http]', e.g. 'hyperv://administrator@hv1.example/'",
    "bhyve": "path /system only, e.g. 'bhyve:///system' or 'bhyve+ssh://root@freebsd1.example/system'",
}
# hyperv://[username@]hostname[:port]/[?extraparameters] (docs/drvhyperv.rst). The user is a
# Windows account: letters, digits, '.', '_', '-', '$', with a percent-encoded domain
# (DOMAIN%5Cuser) or UPN (user%40domain) part; the path is empty or '/' (the driver ignores it).
_HYPERV_URI_RE = re.compile(
    r"^(?i:hyperv)://"
    r"(?:(?P<user>[A-Za-z0-9_.$-]+(?:(?:%5[Cc]|%40)[A-Za-z0-9_.$-]+)?)@)?"
    r"(?P<host>[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"/?(?:\?(?P<query>[A-Za-z0-9_=&.,/-]*))?$"
)
# hypervParseUri (src/hyperv/hyperv_util.c) knows one parameter, its name compared without
# case, its value exactly; it ignores every other name with a warning.
_HYPERV_TRANSPORT = re.compile(r"^(https|http)$")
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
        HostSpec(name="fbsd1", kind="bhyve", uri="bhyve+ssh://root@fbsd1.example/system")
        HostSpec(name="hv1", kind="hyperv", uri="hyperv://administrator@hv1.example/?transport=https")
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
        schemes = _URI_SCHEMES[self.kind]
        uri_allowed = (
            f"a libvirt URI for a {self.kind} host: scheme one of {', '.join(schemes)}, {_URI_EXAMPLES[self.kind]}"
        )
        if self.kind == "hyperv":
            self._check_hyperv_uri(ctx, uri_allowed)
        else:
            self._check_uri(ctx, uri_allowed)
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
            m = _URI_RE.fullmatch(self.uri)
            if not m or not m["scheme"].endswith("+ssh") or m["host"] != "127.0.0.1" or not m["port"] or m["query"]:
                raise ctx.fail(
                    "uri", self.uri,
                    f"with via_vm, '{schemes[0]}+ssh://<user>@127.0.0.1:<the VM's ssh_port>/system' "
                    "(ringzero adds the key and known_hosts itself)",
                )

    def _check_uri(self, ctx: Ctx, uri_allowed: str) -> None:
        """A libvirt URI through the remote driver's transports (qemu, xen, bhyve)."""
        m = _URI_RE.fullmatch(self.uri) if isinstance(self.uri, str) else None
        schemes = _URI_SCHEMES[self.kind]
        if not m or m["scheme"] not in schemes:
            raise ctx.fail("uri", self.uri, uri_allowed)
        if m["port"] and not 1 <= int(m["port"]) <= 65535:
            raise ctx.fail("uri", self.uri, uri_allowed)
        if "+ssh" in m["scheme"] and not m["host"]:
            raise ctx.fail("uri", self.uri, uri_allowed + " (ssh transports need a host)")
        if self.kind == "bhyve" and m["path"] != "/system":
            # bhyveConnectOpen: "Unexpected bhyve URI path '%s', try bhyve:///system"
            raise ctx.fail("uri", self.uri, uri_allowed + " (the bhyve driver opens /system only)")
        if m["scheme"] in ("bhyve", "bhyve+unix") and m["host"]:
            raise ctx.fail("uri", self.uri, uri_allowed + " (a host goes with bhyve+ssh or bhyve+tls)")
        self._check_query(ctx, m["query"] or "")

    def _check_hyperv_uri(self, ctx: Ctx, uri_allowed: str) -> None:
        """hyperv://[user@]host[:port]/[?transport=https|http]: a host, a port, one transport."""
        m = _HYPERV_URI_RE.fullmatch(self.uri) if isinstance(self.uri, str) else None
        if not m:
            scheme_ok = isinstance(self.uri, str) and self.uri.startswith("hyperv://")
            raise ctx.fail("uri", self.uri, uri_allowed + (
                " (a host is required; the path is empty or '/')" if scheme_ok else ""))
        if m["port"] and not 1 <= int(m["port"]) <= 65535:
            raise ctx.fail("uri", self.uri, uri_allowed + " (port from 1 to 65535; default 5986, http 5985)")
        allowed = ("the one URI parameter the hyperv driver reads: transport=https or transport=http, once "
                   "(it ignores every other parameter)")
        seen = False
        for part in (m["query"] or "").split("&") if m["query"] else ():
            key, sep, value = part.partition("=")
            if key.lower() != "transport" or not sep or seen or not _HYPERV_TRANSPORT.fullmatch(value):
                raise ctx.fail("uri", self.uri, allowed)
            seen = True

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
        """`kvm`, `xen`, `hyperv` or `bhyve` by kind, unless explicitly overridden (`qemu`)."""
        return self.domain_type or DOMAIN_TYPES[self.kind][0]

    @property
    def boots_kernel(self) -> bool:
        """Whether this host's driver boots a kernel and initrd from host paths (`<kernel>`).

        libvirt's bhyve driver boots through a loader (UEFI firmware, bhyveload or grub-bhyve)
        and its hyperv driver does not read `<os>` at all, so VMs there boot their disk.
        """
        return self.kind in ("kvm", "xen")

    @property
    def uri_port(self) -> int | None:
        m = (_HYPERV_URI_RE if self.kind == "hyperv" else _URI_RE).fullmatch(self.uri)
        return int(m["port"]) if m and m["port"] else None
