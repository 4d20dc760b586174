"""The socket filter kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ..base import Kind, PlanParts
from .checks import checks
from .render import render_sockfilter
from .spec import SocketFilterSpec


def plan(parts: PlanParts, spec: SocketFilterSpec) -> None:
    """The drop-ins; the services restart when one changes (systemd attaches the filters at start)."""
    parts.add("sockfilter", render_sockfilter(spec))
    parts.confined.update(spec.services)


KIND: Kind[SocketFilterSpec] = Kind(
    name="sockfilter", feature="sockfilter",
    declared=lambda policies, _host: policies.sockfilter,
    render=render_sockfilter, plan=plan, checks=checks,
    owner=lambda s: f"SocketFilter {s.name!r}",
)
