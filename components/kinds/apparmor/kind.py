"""The AppArmor kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ..base import Kind, PlanParts
from .checks import checks
from .expect import loaded_mode
from .render import render_apparmor
from .spec import AppArmorProfileSpec


def plan(parts: PlanParts, spec: AppArmorProfileSpec) -> None:
    """The profile file, and the profile loaded in its declared mode."""
    rendered = render_apparmor(spec)
    parts.add("apparmor", rendered, adopt=spec.adopt)
    parts.plan["apparmor"].append({"name": spec.name, "path": next(iter(rendered)), "mode": loaded_mode(spec),
                                   "feature": "apparmor", "adopt": spec.adopt})


KIND: Kind[AppArmorProfileSpec] = Kind(
    name="apparmor", feature="apparmor",
    declared=lambda policies, _host: policies.apparmor,
    render=render_apparmor, plan=plan, checks=checks,
    owner=lambda s: f"AppArmorProfile {s.name!r}",
)
