"""Compliance checks derived from a declaration: every declared policy, as observable facts.

`expectations(topology)` expands each node's specs into `Check`s with readable ids
(`vm1::slice:web.slice::memory.max`); the testinfra suite (`ringzero/compliance_suite` in the wheel) runs them.
Nothing here restates a declaration by hand: change the spec and the checks follow.
"""

from __future__ import annotations

from ..plan import host_settings
from ..spec import Topology
from . import apparmor, bpf, cgroup, hostprep, seccomp, services
from .base import Check
from .probe import Probe

__all__ = ["Check", "Probe", "expectations"]


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
