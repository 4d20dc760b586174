"""Compliance checks derived from a declaration: every declared policy, as observable facts.

`expectations(topology)` expands each node's specs into `Check`s with readable ids
(`vm1::slice:web.slice::memory.max`), each kind's from its own `ringzero.kinds.<kind>.checks`;
the testinfra suite (`ringzero/compliance_suite` in the wheel) runs them.
Nothing here restates a declaration by hand: change the spec and the checks follow.
"""

from __future__ import annotations

from ..kinds import registry
from ..plan import declared_host, host_settings
from ..spec import Topology
from .base import Check
from .baseline import Baseline, baseline_checks
from .probe import Probe

__all__ = ["Check", "Probe", "expectations", "machine_checks"]


def expectations(topology: Topology, nodes: set[str] | None = None) -> list[Check]:
    """Every declared policy's checks, node by node, kind by kind (`ringzero.kinds.registry`)."""
    out: list[Check] = []
    for pol in topology.nodes:
        if nodes is not None and pol.node not in nodes:
            continue
        host = host_settings(topology, pol.node)
        for kind in registry():
            for spec in kind.declared(pol, host):
                out += kind.checks(pol.node, spec)
    return out


def machine_checks(node: str, topology: Topology | None, baselines: list[Baseline],
                   params: dict[str, dict[str, str]], given: dict[str, str] | None = None) -> list[Check]:
    """Every check for one machine: its declared ones when the manifest has that node, then each
    baseline's controls with `params[baseline]` (RZ-KVM-2's `nested` follows the declared host
    of a manifest node, unless it was given explicitly)."""
    out: list[Check] = []
    if topology is not None and any(n.node == node for n in topology.nodes):
        out += expectations(topology, {node})
    host = declared_host(topology, node) if topology else None
    for b in baselines:
        p = dict(params[b.name])
        if host is not None and "nested" in p and "nested" not in (given or {}):
            p["nested"] = "on" if host.nested_virt else "off"
        out += baseline_checks(node, b, p)
    return out
