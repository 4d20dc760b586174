"""HostPrepSpec: preparing a node to be a hypervisor host (KVM or Xen).

The manifest declares it as `host_prep: kvm|xen` on a node; its settings come from the
node's declared host (`HostSpec.nested_virt`, `HostSpec.dom0_memory_mib`), or HostSpec's
defaults when the node is no declared host. `HostPrepSpec.of` joins the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...spec._check import Ctx

if TYPE_CHECKING:
    from ...spec.host import HostSpec

HOST_PREP_KINDS = ("kvm", "xen")


@dataclass(frozen=True)
class HostPrepSpec:
    """Host preparation of one node.

    Example::

        HostPrepSpec(kind="kvm", node="kvm1", nested_virt=True)
        HostPrepSpec(kind="xen", node="xen1", dom0_memory_mib=4096)
    """

    kind: str
    node: str
    nested_virt: bool = False  # KVM: the kvm_intel/kvm_amd `nested` module parameter
    dom0_memory_mib: int = 2048  # Xen: dom0's fixed memory (no ballooning); ignored for KVM

    def __post_init__(self) -> None:
        ctx = Ctx("HostPrep", str(self.node))
        ctx.rfc1123("node", self.node)
        ctx.choice("kind", self.kind, HOST_PREP_KINDS)
        if not isinstance(self.nested_virt, bool):
            raise ctx.fail("nested_virt", self.nested_virt, "true or false")
        ctx.int_range("dom0_memory_mib", self.dom0_memory_mib, 512)

    @classmethod
    def of(cls, kind: str, node: str, host: HostSpec) -> HostPrepSpec:
        """The preparation `kind` of `node`, with the settings of its host."""
        return cls(kind=kind, node=node, nested_virt=host.nested_virt, dom0_memory_mib=host.dom0_memory_mib)
