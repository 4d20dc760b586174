"""The seccomp kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ..base import Kind, PlanParts
from .checks import checks
from .render import render_seccomp
from .spec import SeccompProfileSpec


def plan(parts: PlanParts, spec: SeccompProfileSpec) -> None:
    """The JSON profiles and drop-ins; the services they filter restart when a drop-in changes."""
    parts.add("seccomp", render_seccomp(spec))
    parts.confined.update(spec.services)


KIND: Kind[SeccompProfileSpec] = Kind(
    name="seccomp", feature="seccomp",
    declared=lambda policies, _host: policies.seccomp,
    render=render_seccomp, plan=plan, checks=checks,
    owner=lambda s: f"SeccompProfile {s.name!r}",
)
