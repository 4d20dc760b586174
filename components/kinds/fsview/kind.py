"""The filesystem view kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ..base import Kind, PlanParts
from .checks import checks
from .expect import mount_unit
from .render import render_fsview
from .spec import FilesystemViewSpec


def plan(parts: PlanParts, spec: FilesystemViewSpec) -> None:
    """The drop-ins (the services restart when one changes) and the overlay's mount unit,
    which ringzero installs: started, and on removal stopped (unmounted) and deleted."""
    parts.add("fsview", render_fsview(spec))
    parts.confined.update(spec.services)
    if spec.overlay is not None:
        parts.own(mount_unit(spec), "fsview")


KIND: Kind[FilesystemViewSpec] = Kind(
    name="fsview", feature="fsview",
    declared=lambda policies, _host: policies.fsviews,
    render=render_fsview, plan=plan, checks=checks,
    owner=lambda s: f"FilesystemView {s.name!r}",
)
