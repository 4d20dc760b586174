"""Compliance checks derived from a declaration: every declared policy, as observable facts.

`expectations(topology)` expands each node's specs into `Check`s with readable ids
(`vm1::slice:web.slice::memory.max`); the testinfra suite (`ringzero/compliance_suite` in the wheel) runs them.
Nothing here restates a declaration by hand: change the spec and the checks follow.
"""

from __future__ import annotations

from ..plan import declared_host, host_settings
from ..spec import Topology
from . import apparmor, bpf, cgroup, hostprep, seccomp, services
from .base import Check
from .baseline import Baseline, baseline_checks
from .probe import Probe

__all__ = ["Check", "Probe", "expectations", "machine_checks"]


def expectations(topology: Topology, nodes: set[str] | None = None) -> list[Check]:
    out: list[Check] = []
    for pol in topology.nodes:
        if nodes is not None and pol.node not in nodes:
            continue
        n = pol.node
        for svc in pol.services:
            out += services.checks(n, svc)
        for sl in pol.slices:
            out += cgroup.checks(n, sl)
        for ap in pol.apparmor:
            out += apparmor.checks(n, ap)
        for sc in pol.seccomp:
            out += seccomp.checks(n, sc)
        for ag in pol.ebpf:
            out += bpf.checks(n, ag)
        if pol.host_prep == "kvm":
            out += hostprep.kvm_checks(n, host_settings(topology, n))
        elif pol.host_prep == "xen":
            out += hostprep.xen_checks(n, host_settings(topology, n))
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
