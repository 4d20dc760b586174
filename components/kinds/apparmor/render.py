"""An AppArmor profile's file: /etc/apparmor.d/<name>, from structured rules or raw text."""

from __future__ import annotations

from ...render import SYSTEMD_DIR, render
from .spec import AppArmorProfileSpec

APPARMOR_DIR = "/etc/apparmor.d"


def apparmor_rules(spec: AppArmorProfileSpec) -> list[str]:
    rules = [f"capability {c}" for c in spec.capabilities]
    rules += [
        ("deny " if n.deny else "") + " ".join(x for x in ("network", n.family, n.type) if x)
        for n in spec.network
    ]
    rules += [("deny " if r.deny else "") + f"{r.path} {r.perms}" for r in spec.files]
    return rules


def render_apparmor(spec: AppArmorProfileSpec) -> dict[str, str]:
    """The profile, and a drop-in per service that runs under it (AppArmorProfile=)."""
    return {**render_profile(spec), **{
        f"{SYSTEMD_DIR}/{svc}.d/ringzero-apparmor-{spec.name}.conf": render(
            "etc/systemd/system/apparmor-dropin.conf.j2", spec=spec, service=svc)
        for svc in spec.services
    }}


def render_profile(spec: AppArmorProfileSpec) -> dict[str, str]:
    path = f"{APPARMOR_DIR}/{spec.file_name}"
    if spec.raw is not None:
        return {path: render("etc/apparmor.d/raw-profile.j2", spec=spec)}
    flags = "complain" if spec.mode == "complain" else ""
    return {path: render("etc/apparmor.d/profile.j2", spec=spec, flags=flags, rules=apparmor_rules(spec))}
