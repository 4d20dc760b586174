"""EbpfAgent: a bpftrace agent run as a systemd service on a node."""

from __future__ import annotations

import pulumi

from .policy import PolicyComponent
from .render import render_ebpf
from .spec import EbpfAgentSpec


class EbpfAgent(PolicyComponent):
    """Example::

        EbpfAgent("execsnoop", EbpfAgentSpec("execsnoop", tool="execsnoop.bt"), node="vm1")
    """

    TYPE = "ringzero:index:EbpfAgent"
    KIND = "ebpf"

    def __init__(
        self, name: str, spec: EbpfAgentSpec, node: str, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, spec, node, render_ebpf, opts)
