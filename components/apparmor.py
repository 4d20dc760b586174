"""AppArmorProfile: an AppArmor profile on a node, in enforce or complain mode."""

from __future__ import annotations

import pulumi

from .policy import PolicyComponent
from .render import render_apparmor
from .spec import AppArmorProfileSpec


class AppArmorProfile(PolicyComponent):
    """Example::

        AppArmorProfile("web", AppArmorProfileSpec("ringzero-web", attach="/usr/bin/web"), node="vm1")
    """

    TYPE = "ringzero:index:AppArmorProfile"
    KIND = "apparmor"

    def __init__(
        self, name: str, spec: AppArmorProfileSpec, node: str, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, spec, node, render_apparmor, opts)
