"""CgroupSlice: a cgroup v2 slice (a systemd .slice unit) on a node."""

from __future__ import annotations

import pulumi

from .policy import PolicyComponent
from .render import render_slice
from .spec import SliceSpec


class CgroupSlice(PolicyComponent):
    """Example::

        CgroupSlice("web", SliceSpec("web.slice", cpu_weight=200, memory_max="512M"), node="vm1")
    """

    TYPE = "ringzero:index:CgroupSlice"
    KIND = "slice"

    def __init__(
        self, name: str, spec: SliceSpec, node: str, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, spec, node, render_slice, opts)
