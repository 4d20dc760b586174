"""The slice kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ...render import SYSTEMD_DIR
from ..base import Kind, PlanParts
from .checks import checks
from .expect import shown_properties, slice_directives
from .render import render_slice
from .spec import SliceSpec


def plan(parts: PlanParts, spec: SliceSpec) -> None:
    """The unit and drop-ins; the directives (`properties`) and what `systemctl show` must
    print once they are in effect (`expect`), for the node module's converge and drift check."""
    parts.add("slices", render_slice(spec))
    directives = dict(slice_directives(spec))
    parts.plan["slices"].append({
        "unit": spec.name, "path": f"{SYSTEMD_DIR}/{spec.name}", "feature": "slices",
        "properties": directives, "expect": shown_properties(directives),
    })
    parts.confined.update(spec.services)


KIND: Kind[SliceSpec] = Kind(
    name="slice", feature="slices",
    declared=lambda policies, _host: policies.slices,
    render=render_slice, plan=plan, checks=checks,
    owner=lambda s: f"CgroupSlice {s.name!r}",
)
