"""Turn a Topology into components: what the reference stack (and any other stack) runs.

Example, in a stack's ``__main__.py``::

    import pulumi
    from ringzero.stack import deploy, topology_from_config

    deployed = deploy(topology_from_config(pulumi.Config("ringzero"), base_dir="."))
    pulumi.export("vms", deployed.vm_outputs())
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from .apparmor import AppArmorProfile
from .cgroup import CgroupSlice
from .ebpf import EbpfAgent
from .host import HypervisorHost
from .image import BaseImage
from .keys import SshKeyPair
from .policy import PolicyComponent
from .seccomp import SeccompProfile
from .spec import BaseImageSpec, SpecError, Topology, from_data, to_manifest
from .vm import VirtualMachine

SECTIONS = ("hosts", "images", "vms", "nodes")


def topology_from_config(config: pulumi.Config, base_dir: str | Path) -> Topology:
    """Read `ringzero:hosts|images|vms|nodes` from stack config; image paths may be relative.

    A bad value raises pulumi.RunError with ringzero's message (resource, field, value,
    allowed), so `pulumi preview` fails before anything changes and without a traceback.
    """
    data = {s: config.get_object(s) or [] for s in SECTIONS}
    base = Path(base_dir).resolve()
    for img in data["images"]:
        if isinstance(img, dict):
            for key in ("source", "kernel", "initrd"):
                if isinstance(img.get(key), str) and not img[key].startswith("/"):
                    img[key] = str((base / img[key]).resolve())
    try:
        return from_data(data)
    except SpecError as e:
        raise pulumi.RunError(str(e)) from None


@dataclass
class Deployed:
    """The components a Topology became, by declared name."""

    topology: Topology
    access_key: SshKeyPair
    hosts: dict[str, HypervisorHost] = field(default_factory=dict)
    images: dict[tuple[str, str], BaseImage] = field(default_factory=dict)
    vms: dict[str, VirtualMachine] = field(default_factory=dict)
    policies: dict[str, list[PolicyComponent]] = field(default_factory=dict)

    def vm_outputs(self) -> dict[str, Any]:
        return {
            name: {
                "name": name,
                "host": vm.spec.host,
                "ssh_endpoint": vm.ssh_endpoint,
                "ssh_port": vm.ssh_port,
                "known_hosts": vm.known_hosts,
                "console_log": vm.console_log,
            }
            for name, vm in self.vms.items()
        }

    def manifest_json(self) -> str:
        return json.dumps(to_manifest(self.topology), sort_keys=True)


def _image_resource_name(img: BaseImageSpec) -> str:
    return f"{img.host}-{img.name}"


def deploy(topology: Topology) -> Deployed:
    """Every host, image, VM and node policy of `topology`, as Pulumi components."""
    access = SshKeyPair("access", comment=f"ringzero@{pulumi.get_stack()}")
    out = Deployed(topology=topology, access_key=access)
    for h in topology.hosts:
        out.hosts[h.name] = HypervisorHost(h.name, h)
    for img in topology.images:
        out.images[(img.host, img.name)] = BaseImage(_image_resource_name(img), img, host=out.hosts[img.host])
    for vm in topology.vms:
        host_key = SshKeyPair(f"{vm.name}-hostkey", comment=f"root@{vm.name}")
        out.vms[vm.name] = VirtualMachine(
            vm.name, vm,
            host=out.hosts[vm.host],
            image=out.images[(vm.host, vm.image)],
            authorized_keys=[access.public_key],
            host_key_private=host_key.private_key,
            host_key_public=host_key.public_key,
            access_private_key=access.private_key,
        )
    for node in topology.nodes:
        comps: list[PolicyComponent] = []
        parent = out.vms.get(node.node) or out.hosts.get(node.node)
        opts = pulumi.ResourceOptions(parent=parent)
        comps += [CgroupSlice(f"{node.node}-{s.name}", s, node.node, opts) for s in node.slices]
        comps += [AppArmorProfile(f"{node.node}-aa-{p.name}", p, node.node, opts) for p in node.apparmor]
        comps += [SeccompProfile(f"{node.node}-seccomp-{p.name}", p, node.node, opts) for p in node.seccomp]
        comps += [EbpfAgent(f"{node.node}-ebpf-{a.name}", a, node.node, opts) for a in node.ebpf]
        out.policies[node.node] = comps
    return out


def allocations(topology: Topology) -> list[dict[str, Any]]:
    return [dataclasses.asdict(a) for a in topology.allocations]
