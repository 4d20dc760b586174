"""The service kind in the registry, and its part of a node's plan.

A service is planned as a `LaunchedService`: its ServiceSpec and the launcher words other
kinds put before its command (`Kind.wraps`: a namespace launcher, Landlock's), so the unit
file is written once, whole, by this kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..base import Kind, PlanParts
from .checks import checks
from .render import render_service
from .spec import ServiceSpec

if TYPE_CHECKING:
    from ...spec.host import HostSpec
    from ...spec.node import NodePolicies


@dataclass(frozen=True)
class LaunchedService:
    """A declared service and the launcher words its command runs under (outermost first)."""

    spec: ServiceSpec
    launcher: tuple[str, ...] = ()


def launched(policies: NodePolicies, host: HostSpec) -> tuple[LaunchedService, ...]:
    """Every declared service with the launchers the node's other kinds wrap it in, chained in
    registry order (an earlier kind's launcher runs first and starts the later ones')."""
    from .. import registry

    words: dict[str, list[str]] = {s.name: [] for s in policies.services}
    for kind in registry():
        if kind.name == "service":
            continue
        for spec in kind.declared(policies, host):
            for service, prefix in kind.wraps(spec).items():
                if service in words:  # NodePolicies refuses a wrapped service it does not declare
                    words[service].extend(prefix)
    return tuple(LaunchedService(s, tuple(words[s.name])) for s in policies.services)


def render(svc: LaunchedService) -> dict[str, str]:
    return render_service(svc.spec, svc.launcher)


def plan(parts: PlanParts, svc: LaunchedService) -> None:
    """The unit file, and the unit itself: enabled, started, restarted when its files change."""
    parts.add("services", render(svc), adopt=svc.spec.adopt)
    parts.own(svc.spec.name, "services", adopt=svc.spec.adopt)


KIND: Kind[LaunchedService] = Kind(
    name="service", feature="services",
    declared=launched,
    render=render, plan=plan, checks=lambda node, svc: checks(node, svc.spec),
    owner=lambda s: f"Service {s.spec.name!r}",
)
