"""A Firewall's files: its nftables table file and the oneshot unit that loads it."""

from __future__ import annotations

from ...render import SYSTEMD_DIR, render
from .expect import chains, table_path, unit_name
from .spec import FirewallSpec


def render_firewall(spec: FirewallSpec) -> dict[str, str]:
    path = table_path(spec)
    return {
        path: render("etc/ringzero/nftables/table.nft.j2", spec=spec, chains=chains(spec)),
        f"{SYSTEMD_DIR}/{unit_name(spec)}": render("etc/systemd/system/firewall.service.j2", spec=spec, path=path),
    }
