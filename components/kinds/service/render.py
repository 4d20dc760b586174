"""A workload service's file: its unit."""

from __future__ import annotations

from collections.abc import Sequence

from ...render import SYSTEMD_DIR, render
from .spec import ServiceSpec


def render_service(spec: ServiceSpec, launcher: Sequence[str] = ()) -> dict[str, str]:
    """`launcher`: words put before the service's command (see `Kind.wraps`)."""
    return {
        f"{SYSTEMD_DIR}/{spec.name}": render(
            "etc/systemd/system/workload.service.j2", spec=spec,
            description=spec.description or f"ringzero service {spec.name}",
            exec_start=" ".join([*launcher, spec.exec_start]),
        )
    }
