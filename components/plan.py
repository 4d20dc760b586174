"""A node's plan: what the `ringzero_node` Ansible module converges the node to.

The plan is derived from a node's specs (its section of the policy manifest) and carries
every rendered file plus the runtime actions those files need: AppArmor profiles to load in
their mode, slices to start, units to enable and restart when their files change, packages.
Playbooks get it as the extra var `ringzero_plan`. Example::

    plan = node_plan(topology, "vm1")
    plan["files"]["/etc/systemd/system/web.slice"]["content"]
"""

from __future__ import annotations

import typing

from .kinds import PlanParts, registry
from .kinds.service.exposure import gate
from .plan_schema import Feature, NodePlan, PlanFile
from .render import SYSTEMD_DIR
from .spec import HostSpec, NodePolicies, SpecError, Topology

# What each feature playbook selects from a plan (playbooks/<feature>.yml); site.yml takes all.
FEATURES: tuple[str, ...] = typing.get_args(Feature)


def declared_host(topology: Topology, node: str) -> HostSpec | None:
    """The host declared with that name, or the host whose libvirtd runs inside that VM."""
    return next((h for h in topology.hosts if node in (h.name, h.via_vm)), None)


def host_settings(topology: Topology, node: str) -> HostSpec:
    """The HostSpec whose settings a node's host preparation uses: its declared host, else
    HostSpec defaults."""
    return declared_host(topology, node) or HostSpec(name=node)


def _unit_files(unit: str, files: dict[str, PlanFile]) -> list[str]:
    """The plan's files that change what `unit` runs: the unit, its drop-ins."""
    prefix = f"{SYSTEMD_DIR}/{unit}"
    return sorted(p for p in files if p == prefix or p.startswith(prefix + ".d/"))


def empty_plan(node: str) -> NodePlan:
    return {"node": node, "files": {}, "apparmor": [], "slices": [], "units": [], "packages": [], "hooks": [],
            "module_params": []}


def node_plan(topology: Topology, node: str) -> NodePlan:
    """The whole plan for `node`; every entry names its feature (playbooks can select some)."""
    policies = next((n for n in topology.nodes if n.node == node), None)
    if policies is None:
        raise SpecError("Node", node, "node", node, "a node declared under `nodes`")
    return policies_plan(policies, host_settings(topology, node))


def policies_plan(policies: NodePolicies, host: HostSpec) -> NodePlan:
    """The plan of one node's policies: each kind adds its part (`ringzero.kinds`), then the
    units section says which units to enable and restart when which of their files change.
    A service scoring above its `max_exposure` with the plan's drop-ins is refused here
    (`ringzero.kinds.service.exposure.gate`), before anything is applied."""
    parts = PlanParts(empty_plan(policies.node))
    for kind in registry():
        for spec in kind.declared(policies, host):
            kind.plan(parts, spec)
    plan = parts.plan
    files = plan["files"]
    for unit, feature in parts.owned.items():
        unit_files = sorted(_unit_files(unit, files) + parts.programs.get(unit, []))
        plan["units"].append({"unit": unit, "owned": True, "feature": feature, "files": unit_files,
                              "adopt": unit in parts.adopted})
    for unit in sorted(parts.confined - set(parts.owned)):
        plan["units"].append({"unit": unit, "owned": False, "feature": "confined", "files": _unit_files(unit, files),
                              "adopt": False})
    gate(policies, plan)
    return plan
