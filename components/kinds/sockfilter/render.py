"""A SocketFilter's files: one drop-in per filtered service."""

from __future__ import annotations

from ...render import render
from .expect import directives, dropin_path
from .spec import SocketFilterSpec


def render_sockfilter(spec: SocketFilterSpec) -> dict[str, str]:
    lines = directives(spec)
    return {dropin_path(spec, svc): render("etc/systemd/system/sockfilter-dropin.conf.j2", spec=spec, service=svc,
                                           directives=lines)
            for svc in spec.services}
