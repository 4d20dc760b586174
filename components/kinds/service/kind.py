"""The service kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ..base import Kind, PlanParts
from .checks import checks
from .render import render_service
from .spec import ServiceSpec


def plan(parts: PlanParts, spec: ServiceSpec) -> None:
    """The unit file, and the unit itself: enabled, started, restarted when its files change."""
    parts.add("services", render_service(spec), adopt=spec.adopt)
    parts.own(spec.name, "services", adopt=spec.adopt)


KIND: Kind[ServiceSpec] = Kind(
    name="service", feature="services",
    declared=lambda policies, _host: policies.services,
    render=render_service, plan=plan, checks=checks,
    owner=lambda s: f"Service {s.name!r}",
)
