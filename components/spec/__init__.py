"""Typed, frozen, validated declarations. No Pulumi in here: specs are plain data.

The policy kinds' specs live with their kind (`ringzero.kinds.<kind>.spec`) and are
re-exported here: `ringzero.spec` is where a user imports every spec from.
"""

from ..kinds.apparmor.spec import AppArmorProfileSpec, FileRule, NetworkRule
from ..kinds.ebpf.spec import EbpfAgentSpec
from ..kinds.firewall.spec import FirewallRule, FirewallSpec
from ..kinds.fsview.spec import FilesystemViewSpec, OverlaySpec
from ..kinds.hostprep.spec import HostPrepSpec
from ..kinds.landlock.spec import LandlockSpec
from ..kinds.namespaces.spec import NamespacesSpec
from ..kinds.seccomp.spec import SeccompProfileSpec, SyscallRule
from ..kinds.service.spec import ServiceSpec
from ..kinds.slice.spec import SliceSpec
from ..kinds.sockfilter.spec import SocketFilterSpec
from .confined import ConfinedServiceSpec
from .errors import SpecError
from .host import HostSpec
from .image import BaseImageSpec
from .manifest import from_data, from_manifest, to_manifest
from .node import NodePolicies
from .topology import Allocation, Topology
from .vm import VmSpec

__all__ = [
    "Allocation", "AppArmorProfileSpec", "BaseImageSpec", "ConfinedServiceSpec", "EbpfAgentSpec", "FileRule",
    "FilesystemViewSpec", "FirewallRule", "FirewallSpec", "HostPrepSpec", "HostSpec", "LandlockSpec", "NamespacesSpec",
    "NetworkRule", "NodePolicies", "OverlaySpec", "SeccompProfileSpec", "ServiceSpec", "SliceSpec", "SocketFilterSpec",
    "SpecError",
    "SyscallRule", "Topology", "VmSpec", "from_data", "from_manifest", "to_manifest",
]
