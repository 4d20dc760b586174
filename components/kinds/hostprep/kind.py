"""The host preparation kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ...spec.host import HostSpec
from ...spec.node import NodePolicies
from ..base import Kind, PlanParts
from .checks import checks
from .expect import PACKAGES, XEN_GRUB, module_params
from .render import render_host_prep
from .spec import HostPrepSpec


def plan(parts: PlanParts, spec: HostPrepSpec) -> None:
    """The configuration file, the packages; KVM: module parameters to reload; Xen: update-grub."""
    parts.add("host_prep", render_host_prep(spec))
    parts.plan["packages"] = list(PACKAGES[spec.kind])
    # A loaded module keeps its old options: the node module reloads it (or says a reboot is needed).
    parts.plan["module_params"] = [{"module": m, "param": p, "value": v, "feature": "host_prep"}
                                   for m, p, v in module_params(spec)]
    if spec.kind == "xen":
        parts.plan["hooks"].append({
            "argv": ["/usr/sbin/update-grub"], "files": [XEN_GRUB], "reboot": True, "feature": "host_prep",
            "why": "Xen becomes the default boot entry with the next reboot",
        })


def declared(policies: NodePolicies, host: HostSpec) -> list[HostPrepSpec]:
    """The node's host preparation with its host's settings (none unless `host_prep` is set)."""
    if policies.host_prep is None:
        return []
    return [HostPrepSpec.of(policies.host_prep, policies.node, host)]


KIND: Kind[HostPrepSpec] = Kind(
    name="hostprep", feature="host_prep", declared=declared, render=render_host_prep, plan=plan, checks=checks,
    owner=lambda s: f"host_prep {s.kind!r}",
)
