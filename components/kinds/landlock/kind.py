"""The Landlock kind in the registry, and its part of a node's plan.

The plan carries the ruleset (0644), the launcher (0755, the same file for every ruleset) and a
`landlock` entry the node module checks against the node's ABI before it changes anything. Each
service of the spec runs `launcher RULESET -- <its command>` and restarts when either changes.
"""

from __future__ import annotations

from ..base import Kind, PlanParts
from .checks import checks
from .expect import LAUNCHER, needs, ruleset_path
from .render import launcher_text, render_landlock
from .spec import LandlockSpec


def plan(parts: PlanParts, spec: LandlockSpec) -> None:
    parts.add("landlock", render_landlock(spec))
    parts.add("landlock", {LAUNCHER: launcher_text()}, mode="0755")
    parts.plan.setdefault("landlock", []).append({
        "name": spec.name, "ruleset": ruleset_path(spec), "mode": spec.mode, "needs": needs(spec),
        "feature": "landlock",
    })
    for svc in spec.services:  # the service kind owns the unit; these files change what it runs
        programs = parts.programs.setdefault(svc, [])
        programs += [p for p in (ruleset_path(spec), LAUNCHER) if p not in programs]


def wraps(spec: LandlockSpec) -> dict[str, list[str]]:
    return {svc: [LAUNCHER, ruleset_path(spec), "--"] for svc in spec.services}


KIND: Kind[LandlockSpec] = Kind(
    name="landlock", feature="landlock",
    declared=lambda policies, _host: policies.landlock,
    render=render_landlock, plan=plan, checks=checks,
    owner=lambda s: f"Landlock {s.name!r}",
    wraps=wraps,
)
