"""A slice's files: the .slice unit (directives from the slice table) and a Slice= drop-in per service."""

from __future__ import annotations

from ...render import SYSTEMD_DIR, render
from .expect import slice_directives
from .spec import SliceSpec


def render_slice(spec: SliceSpec) -> dict[str, str]:
    """Example: ``render_slice(SliceSpec("web.slice", cpu_weight=200))["/etc/systemd/system/web.slice"]``."""
    files = {
        f"{SYSTEMD_DIR}/{spec.name}": render(
            "etc/systemd/system/slice.slice.j2", spec=spec,
            description=spec.description or f"ringzero slice {spec.name}",
            directives=slice_directives(spec),
        )
    }
    for svc in spec.services:
        files[f"{SYSTEMD_DIR}/{svc}.d/ringzero-slice.conf"] = render(
            "etc/systemd/system/service-slice.conf.j2", spec=spec, service=svc
        )
    return files
