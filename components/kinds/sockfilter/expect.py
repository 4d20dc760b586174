"""What a declared SocketFilter is on the node, from one table: each field's unit directive,
the `systemctl show` property that reports it, and the cgroup BPF programs systemd attaches
for it (`bpftool cgroup show`: its programs are named sd_fw_* and sd_bind*)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ...spec._check import Ctx
from .spec import Net, SocketFilterSpec, bind_rule, ip_prefixes


@dataclass(frozen=True)
class Row:
    field: str  # the SocketFilterSpec field
    directive: str  # the unit directive, and the `systemctl show` property
    attach: tuple[str, ...]  # the cgroup attach types systemd uses for it (bpftool's names)


ROWS = (
    Row("ip_allow", "IPAddressAllow", ("cgroup_inet_ingress", "cgroup_inet_egress")),
    Row("ip_deny", "IPAddressDeny", ("cgroup_inet_ingress", "cgroup_inet_egress")),
    Row("bind_allow", "SocketBindAllow", ("cgroup_inet4_bind", "cgroup_inet6_bind")),
    Row("bind_deny", "SocketBindDeny", ("cgroup_inet4_bind", "cgroup_inet6_bind")),
)
PROPERTIES = tuple(r.directive for r in ROWS)
BIND_ATTACH = {a for r in ROWS if r.field.startswith("bind_") for a in r.attach}


def dropin_path(spec: SocketFilterSpec, service: str) -> str:
    return f"/etc/systemd/system/{service}.d/ringzero-sockfilter-{spec.name}.conf"


def directives(spec: SocketFilterSpec) -> list[tuple[str, str]]:
    """The drop-in's lines, in ROWS order (each entry its own line: systemd appends them)."""
    return [(r.directive, v) for r in ROWS for v in getattr(spec, r.field)]


def _reduced(nets: set[Net]) -> frozenset[Net]:
    """Without the prefixes another one covers (systemd reduces the list the same way)."""
    return frozenset(n for n in nets if not any(o != n and o.version == n.version
                                                 and n.subnet_of(o) for o in nets))  # type: ignore[arg-type]


def ip_set(values: tuple[str, ...] | list[str]) -> frozenset[Net]:
    ctx = Ctx("SocketFilter", "")
    return _reduced({n for v in values for n in ip_prefixes(ctx, "ip", v)})


Bind = tuple[str | None, str | None, tuple[int, int] | None]


def bind_set(values: tuple[str, ...] | list[str]) -> frozenset[Bind]:
    ctx = Ctx("SocketFilter", "")
    return frozenset(bind_rule(ctx, "bind", v) for v in values)


# How systemd 252 prints one SocketBindAllow=/SocketBindDeny= entry (captured:
# tests/unit/facts/systemctl-show-sockfilter.txt): the family keeps its ":", the protocol loses
# it ("tcp:8080" shows as "tcp8080", "ipv6:udp:5000-5100" as "ipv6:udp5000-5100").
SHOWN_BIND_RE = re.compile(r"^(?:(?P<family>ipv4|ipv6):)?(?:(?P<proto>tcp|udp):?)?"
                           r"(?P<ports>any|[0-9]{1,5}(?:-[0-9]{1,5})?)$")


def _shown_bind(word: str) -> Bind:
    m = SHOWN_BIND_RE.fullmatch(word)
    if m is None:
        raise ValueError(word)
    ports = m["ports"]
    return bind_rule(Ctx("SocketFilter", ""), "bind", ":".join(p for p in (m["family"], m["proto"], ports) if p))


def parse_shown(prop: str, values: list[str]) -> frozenset[Net] | frozenset[Bind] | None:
    """The `systemctl show` lines of one of PROPERTIES (IPAddress*: one line of space-separated
    prefixes; SocketBind*: one line per entry) as a comparable set; None when one does not parse."""
    words = [w for v in values for w in v.split()]
    try:
        if prop.startswith("IPAddress"):
            return _reduced({ipaddress.ip_network(w, strict=False) for w in words})
        return frozenset(_shown_bind(w) for w in words)
    except Exception:  # SpecError (a bind rule) or ValueError (an address)
        return None


def expected(spec: SocketFilterSpec) -> dict[str, frozenset[Net] | frozenset[Bind]]:
    """Property -> the set the node must show (only the properties the spec sets)."""
    out: dict[str, frozenset[Net] | frozenset[Bind]] = {}
    for r in ROWS:
        values: tuple[str, ...] = getattr(spec, r.field)
        if values:
            out[r.directive] = ip_set(values) if r.field.startswith("ip_") else bind_set(values)
    return out


# bpftool's older names for the same attach types (libbpf's names above)
LEGACY_ATTACH = {"ingress": "cgroup_inet_ingress", "egress": "cgroup_inet_egress",
                 "bind4": "cgroup_inet4_bind", "bind6": "cgroup_inet6_bind"}


def attach_types(spec: SocketFilterSpec) -> set[str]:
    return {a for r in ROWS if getattr(spec, r.field) for a in r.attach}

