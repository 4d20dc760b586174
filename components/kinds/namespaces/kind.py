"""The namespaces kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ..base import Kind, PlanParts
from .checks import checks
from .expect import launcher
from .render import render_namespaces
from .spec import NamespacesSpec


def plan(parts: PlanParts, spec: NamespacesSpec) -> None:
    """The drop-ins; the services restart when one changes. The launcher is in the service's
    own unit (`Kind.wraps`), written by the service kind."""
    parts.add("namespaces", render_namespaces(spec))
    parts.confined.update(spec.services)


KIND: Kind[NamespacesSpec] = Kind(
    name="namespaces", feature="namespaces",
    declared=lambda policies, _host: policies.namespaces,
    render=render_namespaces, plan=plan, checks=checks,
    owner=lambda s: f"Namespaces {s.name!r}",
    wraps=lambda s: dict.fromkeys(s.services, launcher(s)) if launcher(s) else {},
)
