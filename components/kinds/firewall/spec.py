"""FirewallSpec: a node's nftables allow-lists in a table of ringzero's own (`inet ringzero_<name>`)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ...spec._check import Ctx
from ..slice.spec import _SLICE_RE, SLICE_ALLOWED

DIRECTIONS = ("in", "out")
PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6", "any")
ACTIONS = ("accept", "drop", "reject")
POLICIES = ("accept", "drop")
# nft identifiers: the table is `ringzero_<name>` (no '-': nft would need quotes)
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
NAME_ALLOWED = "1-32 characters of a-z, 0-9 and '_', starting with a letter (the table is inet ringzero_<name>)"
_RANGE_RE = re.compile(r"^([0-9]{1,5})-([0-9]{1,5})$")
PORTS_ALLOWED = "a port from 1 to 65535 (an integer) or a range 'LO-HI' with 1 <= LO <= HI <= 65535"
ADDRESS_ALLOWED = ("an IPv4 or IPv6 address or network prefix with no host bits set "
                   "(e.g. '10.0.0.0/8', '192.0.2.7', 'fd00::/64')")


@dataclass(frozen=True)
class FirewallRule:
    """One allow-list entry of a Firewall. `direction` "in" matches the packets a node receives
    (addresses are their sources), "out" those it sends (addresses are destinations); `ports` are
    destination ports (the node's own for "in", the peer's for "out"); `slice` matches only
    sockets of processes in that systemd slice (nftables `socket cgroupv2`).

    Example::

        FirewallRule("in", "accept", "tcp", ports=(8080, "9000-9100"), addresses=("10.0.0.0/8",))
        FirewallRule("out", "reject", "tcp", ports=(25,), slice="web.slice")
    """

    direction: str
    action: str = "accept"
    protocol: str = "tcp"
    ports: tuple[int | str, ...] = ()
    addresses: tuple[str, ...] = ()
    slice: str | None = None


@dataclass(frozen=True)
class FirewallSpec:
    """A node firewall: ONE nftables table, `inet ringzero_<name>`, with an input and an output
    chain (hook priority `filter`) whose default policies and rules are declared here. Other
    tables (the OS's, a user's, another FirewallSpec's) are never flushed or edited; a packet
    leaves the node only if every table's chains accept it.

    A chain with policy "drop" first accepts loopback traffic (`iif/oif "lo"`: local services
    talking to each other are not network policy), packets of connections already allowed
    (`ct state established,related`), IPv6 neighbour discovery, and, on input, TCP to
    `management_port` (22: the SSH ringzero and its operator reach the node through), so no
    declaration can cut the node off by accident; `management_port=None` says explicitly that
    nothing is kept open.

    Example::

        FirewallSpec("web", input_policy="drop",
                     rules=(FirewallRule("in", "accept", "tcp", ports=(80, 443)),))
    """

    name: str
    input_policy: str = "accept"
    output_policy: str = "accept"
    rules: tuple[FirewallRule, ...] = ()
    management_port: int | None = 22

    def __post_init__(self) -> None:
        ctx = Ctx("Firewall", str(self.name))
        ctx.pattern("name", self.name, _NAME_RE, NAME_ALLOWED)
        ctx.choice("input_policy", self.input_policy, POLICIES)
        ctx.choice("output_policy", self.output_policy, POLICIES)
        if self.management_port is not None:
            ctx.int_range("management_port", self.management_port, 1, 65535)
        if not self.rules and self.input_policy == self.output_policy == "accept":
            raise ctx.fail("rules", self.rules, "at least one FirewallRule, or a default policy of 'drop'")
        for i, rule in enumerate(self.rules):
            _check_rule(ctx, f"rules[{i}]", rule)

    @property
    def table(self) -> str:
        return f"ringzero_{self.name}"

    @property
    def slices(self) -> tuple[str, ...]:
        """The slices its rules match, in declaration order: their cgroups must exist when it loads."""
        return tuple(dict.fromkeys(r.slice for r in self.rules if r.slice is not None))


def _check_rule(ctx: Ctx, at: str, rule: FirewallRule) -> None:
    ctx.choice(f"{at}.direction", rule.direction, DIRECTIONS)
    ctx.choice(f"{at}.action", rule.action, ACTIONS)
    ctx.choice(f"{at}.protocol", rule.protocol, PROTOCOLS)
    if rule.ports and rule.protocol not in ("tcp", "udp"):
        raise ctx.fail(f"{at}.ports", rule.ports, f"no ports with protocol {rule.protocol!r}: ports only with "
                       "'tcp' or 'udp'")
    for j, port in enumerate(rule.ports):
        port_range(ctx, f"{at}.ports[{j}]", port)
    families: set[int] = set()
    for j, addr in enumerate(rule.addresses):
        families.add(network(ctx, f"{at}.addresses[{j}]", addr).version)
    wrong = {"icmp": 6, "icmpv6": 4}.get(rule.protocol)
    if wrong in families:
        raise ctx.fail(f"{at}.addresses", rule.addresses, f"IPv{10 - wrong} addresses only with protocol "
                       f"{rule.protocol!r} (it exists only in IPv{10 - wrong})")
    if rule.slice is not None:
        ctx.pattern(f"{at}.slice", rule.slice, _SLICE_RE, SLICE_ALLOWED)


def port_range(ctx: Ctx, field: str, value: object) -> tuple[int, int]:
    """An int port or 'LO-HI' as (lo, hi)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= 65535:
            return value, value
        raise ctx.fail(field, value, PORTS_ALLOWED)
    m = _RANGE_RE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ctx.fail(field, value, PORTS_ALLOWED)
    lo, hi = int(m[1]), int(m[2])
    if not 1 <= lo <= hi <= 65535:
        raise ctx.fail(field, value, PORTS_ALLOWED)
    return lo, hi


def network(ctx: Ctx, field: str, value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Fa-f.:/]{2,64}", value):
        raise ctx.fail(field, value, ADDRESS_ALLOWED)
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ctx.fail(field, value, ADDRESS_ALLOWED) from None
