"""The seccomp kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ...spec.host import HostSpec
from ...spec.node import NodePolicies
from ..base import Kind, PlanParts
from .checks import checks
from .render import render_seccomp
from .spec import SeccompProfileSpec


def plan(parts: PlanParts, spec: SeccompProfileSpec) -> None:
    """The JSON profiles and drop-ins; the services they filter restart when a drop-in changes."""
    parts.add("seccomp", render_seccomp(spec))
    parts.confined.update(spec.services)


def _declared(policies: NodePolicies, _host: HostSpec) -> tuple[SeccompProfileSpec, ...]:
    return policies.seccomp


KIND: Kind[SeccompProfileSpec] = Kind(
    name="seccomp", feature="seccomp", declared=_declared, render=render_seccomp, plan=plan, checks=checks,
    owner=lambda s: f"SeccompProfile {s.name!r}",
)
