"""The firewall kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ..base import Kind, PlanParts
from .checks import checks
from .expect import table_path, unit_name
from .render import render_firewall
from .spec import FirewallSpec


def plan(parts: PlanParts, spec: FirewallSpec) -> None:
    """The table file and its unit; the unit (re)loads the table when the file changes, and
    stopping it (removal) deletes the table."""
    parts.add("firewall", render_firewall(spec))
    parts.own(unit_name(spec), "firewall", programs=[table_path(spec)])


KIND: Kind[FirewallSpec] = Kind(
    name="firewall", feature="firewall",
    declared=lambda policies, _host: policies.firewall,
    render=render_firewall, plan=plan, checks=checks,
    owner=lambda s: f"Firewall {s.name!r}",
)
