"""A workload service's file: its unit."""

from __future__ import annotations

from ...render import SYSTEMD_DIR, render
from .spec import ServiceSpec


def render_service(spec: ServiceSpec) -> dict[str, str]:
    return {
        f"{SYSTEMD_DIR}/{spec.name}": render(
            "etc/systemd/system/workload.service.j2", spec=spec,
            description=spec.description or f"ringzero service {spec.name}",
        )
    }
