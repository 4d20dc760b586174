"""What a declared Firewall is on the node, in both forms from one place: each nftables rule as
the text the table file holds and as the JSON `nft -j list table inet ringzero_<name>` prints
for it (nft 1.0.6, Debian 12's: set elements sorted, overlapping ones merged, a /32 or /128
printed as an address, `reject` typed by the family the rule matches). The table file is one
transaction (`table X {}; delete table X; table X {…}`): loading it replaces the table
atomically, and nothing else in the ruleset."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from ...spec._check import Ctx
from .spec import FirewallRule, FirewallSpec, network, port_range

NFT_DIR = "/etc/ringzero/nftables"
FAMILY = "inet"
CHAINS = {"in": ("input", "input"), "out": ("output", "output")}  # direction -> (chain, hook)
ND_TYPES = ("nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert")
MANAGEMENT_COMMENT = "ringzero: management port"
L4PROTO_LISTED = {"icmpv6": "ipv6-icmp"}  # /etc/protocols' name, which nft -j prints

Json = dict[str, Any]


@dataclass(frozen=True)
class NftRule:
    """One rule: its line in the table file and what nft -j lists for it (expr, comment)."""

    text: str
    expr: tuple[Json, ...]
    comment: str | None = None


@dataclass(frozen=True)
class NftChain:
    name: str
    hook: str
    policy: str
    rules: tuple[NftRule, ...]


def table_path(spec: FirewallSpec) -> str:
    return f"{NFT_DIR}/{spec.name}.nft"


def unit_name(spec: FirewallSpec) -> str:
    return f"ringzero-firewall-{spec.name}.service"


def slice_cgroup(slice_: str) -> str:
    """'web-api.slice' -> 'web.slice/web-api.slice' (its path under /sys/fs/cgroup)."""
    stem = slice_[: -len(".slice")].split("-")
    return "/".join("-".join(stem[: i + 1]) + ".slice" for i in range(len(stem)))


def _match(left: Json, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(protocol: str, field: str) -> Json:
    return {"payload": {"protocol": protocol, "field": field}}


def _ports(rule: FirewallRule) -> list[tuple[int, int]]:
    """Sorted, overlapping ranges merged (as nft stores an interval set; adjacent ones stay)."""
    ctx = Ctx("Firewall", "")
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(port_range(ctx, "ports", p) for p in rule.ports):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(rule: FirewallRule, version: int) -> list[Net]:
    """A family's networks, sorted, those inside another one left out (nft merges them)."""
    ctx = Ctx("Firewall", "")
    nets = sorted({n for a in rule.addresses if (n := network(ctx, "addresses", a)).version == version},
                  key=lambda n: (int(n.network_address), n.prefixlen))
    return [n for n in nets if not any(o != n and n.subnet_of(o) for o in nets)]  # type: ignore[arg-type]


def _elem_text(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _elem_json(lo: int, hi: int) -> Any:
    return lo if lo == hi else {"range": [lo, hi]}


def _net_text(n: Net) -> str:
    return str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n)


def _net_json(n: Net) -> Any:
    if n.prefixlen == n.max_prefixlen:
        return str(n.network_address)
    return {"prefix": {"addr": str(n.network_address), "len": n.prefixlen}}


def _set(texts: list[str], values: list[Any]) -> tuple[str, Any]:
    if len(texts) == 1:
        return texts[0], values[0]
    return "{ " + ", ".join(texts) + " }", {"set": values}


def _rules(rule: FirewallRule) -> list[NftRule]:
    """A declared rule as nft rules: one per address family when it names addresses of both."""
    head_t: list[str] = []
    head_j: list[Json] = []
    if rule.protocol in ("tcp", "udp") and rule.ports:
        ports = _ports(rule)
        t, j = _set([_elem_text(*p) for p in ports], [_elem_json(*p) for p in ports])
        head_t.append(f"{rule.protocol} dport {t}")
        head_j.append(_match(_payload(rule.protocol, "dport"), j))
    elif rule.protocol != "any":
        head_t.append(f"meta l4proto {rule.protocol}")
        head_j.append(_match({"meta": {"key": "l4proto"}}, L4PROTO_LISTED.get(rule.protocol, rule.protocol)))
    tail_t: list[str] = []
    tail_j: list[Json] = []
    if rule.slice is not None:
        path = slice_cgroup(rule.slice)
        tail_t.append(f'socket cgroupv2 level {path.count("/") + 1} "{path}"')
        tail_j.append(_match({"socket": {"key": "cgroupv2"}}, path))
    field = "saddr" if rule.direction == "in" else "daddr"
    by_family: list[tuple[str | None, str, Json | None]] = []
    for version, family in ((4, "ip"), (6, "ip6")):
        nets = _networks(rule, version)
        if nets:
            t, j = _set([_net_text(n) for n in nets], [_net_json(n) for n in nets])
            by_family.append((family, f"{family} {field} {t}", _match(_payload(family, field), j)))
    if not by_family:
        by_family.append((None, "", None))
    out = []
    for fam, addr_t, addr_j in by_family:
        verdict_t, verdict_j = _verdict(rule, fam)
        texts = [*head_t, *([addr_t] if addr_t else []), *tail_t, verdict_t]
        exprs = [*head_j, *([addr_j] if addr_j else []), *tail_j, verdict_j]
        out.append(NftRule(" ".join(texts), tuple(exprs)))
    return out


def _verdict(rule: FirewallRule, family: str | None) -> tuple[str, Json]:
    if rule.action != "reject":
        return rule.action, {rule.action: None}
    if rule.protocol == "tcp":
        return "reject with tcp reset", {"reject": {"type": "tcp reset"}}
    kind = {"ip": "icmp", "ip6": "icmpv6", None: "icmpx"}[family]
    return "reject", {"reject": {"type": kind, "expr": "port-unreachable"}}


def _guard(spec: FirewallSpec, direction: str) -> list[NftRule]:
    """What a drop-policy chain accepts first (FirewallSpec's docstring says why)."""
    iface = "iif" if direction == "in" else "oif"
    out = [
        NftRule(f'{iface} "lo" accept', (_match({"meta": {"key": iface}}, "lo"), {"accept": None})),
        NftRule("ct state established,related accept",
                (_match({"ct": {"key": "state"}}, ["established", "related"], "in"), {"accept": None})),
        NftRule("icmpv6 type { " + ", ".join(ND_TYPES) + " } accept",
                (_match(_payload("icmpv6", "type"), {"set": list(ND_TYPES)}), {"accept": None})),
    ]
    if direction == "in" and spec.management_port is not None:
        out.append(NftRule(f'tcp dport {spec.management_port} accept comment "{MANAGEMENT_COMMENT}"',
                           (_match(_payload("tcp", "dport"), spec.management_port), {"accept": None}),
                           MANAGEMENT_COMMENT))
    return out


def chains(spec: FirewallSpec) -> tuple[NftChain, ...]:
    """The table's two chains, in file order: their hooks, policies and rules."""
    out = []
    for direction, policy in (("in", spec.input_policy), ("out", spec.output_policy)):
        name, hook = CHAINS[direction]
        rules = _guard(spec, direction) if policy == "drop" else []
        for rule in spec.rules:
            if rule.direction == direction:
                rules.extend(_rules(rule))
        out.append(NftChain(name, hook, policy, tuple(rules)))
    return tuple(out)


def listed(spec: FirewallSpec) -> dict[str, Json]:
    """What `nft_table` (ringzero.facts) makes of the table's listing when it holds the declaration."""
    return {c.name: {"hook": c.hook, "prio": 0, "policy": c.policy, "type": "filter",
                     "rules": [_rule_json(r) for r in c.rules]} for c in chains(spec)}


def _rule_json(r: NftRule) -> Json:
    return {"expr": list(r.expr), **({"comment": r.comment} if r.comment else {})}
