"""Typed, frozen, validated declarations. No Pulumi in here: specs are plain data."""

from .apparmor import AppArmorProfileSpec, FileRule, NetworkRule
from .cgroup import SliceSpec
from .ebpf import EbpfAgentSpec
from .errors import SpecError
from .host import HostSpec
from .image import BaseImageSpec
from .manifest import from_data, from_manifest, to_manifest
from .node import NodePolicies
from .seccomp import SeccompProfileSpec, SyscallRule
from .service import ServiceSpec
from .topology import Allocation, Topology
from .vm import VmSpec

__all__ = [
    "Allocation", "AppArmorProfileSpec", "BaseImageSpec", "EbpfAgentSpec", "FileRule",
    "HostSpec", "NetworkRule", "NodePolicies", "SeccompProfileSpec", "ServiceSpec", "SliceSpec", "SpecError",
    "SyscallRule", "Topology", "VmSpec", "from_data", "from_manifest", "to_manifest",
]
