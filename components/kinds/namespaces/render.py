"""A NamespacesSpec's files: a drop-in per service with the directives of expect.directives()."""

from __future__ import annotations

from ...render import SYSTEMD_DIR, render
from .expect import directives
from .spec import NamespacesSpec


def dropin_path(spec: NamespacesSpec, service: str) -> str:
    return f"{SYSTEMD_DIR}/{service}.d/ringzero-namespaces-{spec.name}.conf"


def render_namespaces(spec: NamespacesSpec) -> dict[str, str]:
    lines = directives(spec)
    if not lines:
        return {}  # only a launcher (or nothing): no drop-in
    return {dropin_path(spec, svc): render("etc/systemd/system/sandbox-dropin.conf.j2",
                                           owner=f"Namespaces {spec.name}", service=svc, unit=[], directives=lines)
            for svc in spec.services}
