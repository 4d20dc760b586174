"""SeccompProfile: a seccomp profile on a node (OCI JSON and systemd drop-ins)."""

from __future__ import annotations

import pulumi

from .policy import PolicyComponent
from .render import render_seccomp
from .spec import SeccompProfileSpec


class SeccompProfile(PolicyComponent):
    """Example::

        SeccompProfile("nomkdir", SeccompProfileSpec(
            "no-mkdir", "SCMP_ACT_ALLOW", rules=(SyscallRule(("mkdir",), "SCMP_ACT_ERRNO"),)
        ), node="vm1")
    """

    TYPE = "ringzero:index:SeccompProfile"
    KIND = "seccomp"

    def __init__(
        self, name: str, spec: SeccompProfileSpec, node: str, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, spec, node, render_seccomp, opts)
