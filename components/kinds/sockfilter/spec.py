"""SocketFilterSpec: systemd's cgroup-attached eBPF filters for services (IPAddressAllow/Deny,
SocketBindAllow/Deny), as a drop-in per service."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ...spec._check import Ctx
from ..service.spec import SERVICE_ALLOWED, SERVICE_RE

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# systemd.resource-control(5): the symbolic names IPAddressAllow=/IPAddressDeny= take.
IP_KEYWORDS = {
    "any": ("0.0.0.0/0", "::/0"),
    "localhost": ("127.0.0.0/8", "::1/128"),
    "link-local": ("169.254.0.0/16", "fe80::/64"),
    "multicast": ("224.0.0.0/4", "ff00::/8"),
}
IP_ALLOWED = ("an IPv4 or IPv6 address or prefix (host bits zero, e.g. '10.0.0.0/8', '::1'), or one of "
              + ", ".join(repr(k) for k in IP_KEYWORDS))
# systemd.resource-control(5) SocketBindAllow=: [address-family:][transport-protocol:]ip-ports
BIND_RE = re.compile(r"^(?:(?P<family>ipv4|ipv6):)?(?:(?P<proto>tcp|udp):)?(?P<ports>any|[0-9]{1,5}(?:-[0-9]{1,5})?)$")
BIND_ALLOWED = ("[ipv4:|ipv6:][tcp:|udp:]PORTS with PORTS 'any', a port from 1 to 65535 or a range 'LO-HI' "
                "(e.g. 'tcp:8080', 'ipv6:udp:5000-5100', 'any')")


@dataclass(frozen=True)
class SocketFilterSpec:
    """Address and bind filters systemd attaches (cgroup eBPF) to each of `services`' cgroups.

    `ip_allow`/`ip_deny` (IPAddressAllow=/IPAddressDeny=): whom the service's sockets may exchange
    packets with (the more specific entry wins, allow over deny when equal); `bind_allow`/
    `bind_deny` (SocketBindAllow=/SocketBindDeny=): which ports it may bind (allow first).

    Example::

        SocketFilterSpec("web-net", services=("web.service",), ip_allow=("localhost",),
                         ip_deny=("any",), bind_allow=("tcp:8080",), bind_deny=("any",))
    """

    name: str
    services: tuple[str, ...] = ()  # in a ConfinedServiceSpec: filled in with its service
    ip_allow: tuple[str, ...] = ()
    ip_deny: tuple[str, ...] = ()
    bind_allow: tuple[str, ...] = ()
    bind_deny: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ctx = Ctx("SocketFilter", str(self.name))
        ctx.pattern("name", self.name, _NAME_RE, "1-64 characters of letters, digits and . _ -")
        if not isinstance(self.services, tuple):
            raise ctx.fail("services", self.services, "a tuple of service unit names")
        for i, svc in enumerate(self.services):
            ctx.pattern(f"services[{i}]", svc, SERVICE_RE, SERVICE_ALLOWED)
        if not (self.ip_allow or self.ip_deny or self.bind_allow or self.bind_deny):
            raise ctx.fail("ip_deny", self.ip_deny, "at least one entry in ip_allow, ip_deny, bind_allow or bind_deny")
        for field in ("ip_allow", "ip_deny"):
            for i, value in enumerate(getattr(self, field)):
                ip_prefixes(ctx, f"{field}[{i}]", value)
        for field in ("bind_allow", "bind_deny"):
            for i, value in enumerate(getattr(self, field)):
                bind_rule(ctx, f"{field}[{i}]", value)


Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def ip_prefixes(ctx: Ctx, field: str, value: object) -> tuple[Net, ...]:
    """An entry as the networks it stands for (a keyword stands for two)."""
    if isinstance(value, str) and value in IP_KEYWORDS:
        return tuple(ipaddress.ip_network(v) for v in IP_KEYWORDS[value])
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Fa-f.:/]{2,64}", value):
        raise ctx.fail(field, value, IP_ALLOWED)
    try:
        return (ipaddress.ip_network(value, strict=True),)
    except ValueError:
        raise ctx.fail(field, value, IP_ALLOWED) from None


def bind_rule(ctx: Ctx, field: str, value: object) -> tuple[str | None, str | None, tuple[int, int] | None]:
    """(family, protocol, (lo, hi) or None for any)."""
    m = BIND_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ctx.fail(field, value, BIND_ALLOWED)
    if m["ports"] == "any":
        return m["family"], m["proto"], None
    lo, _, hi = m["ports"].partition("-")
    ports = (int(lo), int(hi or lo))
    if not 1 <= ports[0] <= ports[1] <= 65535:
        raise ctx.fail(field, value, BIND_ALLOWED)
    return m["family"], m["proto"], ports
