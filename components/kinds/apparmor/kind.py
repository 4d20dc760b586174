"""The AppArmor kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ..base import Kind, PlanParts
from .checks import checks
from .expect import loaded_mode
from .render import render_apparmor, render_profile
from .spec import AppArmorProfileSpec


def plan(parts: PlanParts, spec: AppArmorProfileSpec) -> None:
    """The profile file, the profile loaded in its declared mode, and the drop-ins of the
    services it confines (restarted when one changes)."""
    (path,) = render_profile(spec)
    rendered = render_apparmor(spec)
    parts.add("apparmor", {path: rendered.pop(path)}, adopt=spec.adopt)
    parts.add("apparmor", rendered)
    parts.confined.update(spec.services)
    parts.plan["apparmor"].append({"name": spec.name, "path": path, "mode": loaded_mode(spec),
                                   "feature": "apparmor", "adopt": spec.adopt})


KIND: Kind[AppArmorProfileSpec] = Kind(
    name="apparmor", feature="apparmor",
    declared=lambda policies, _host: policies.apparmor,
    render=render_apparmor, plan=plan, checks=checks,
    owner=lambda s: f"AppArmorProfile {s.name!r}",
)
