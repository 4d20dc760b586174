"""Topology: the whole declaration H = <hosts, images, VMs, node policies>, cross-checked.

Scheduling (`Schedule(VM, Resources) -> Allocation`) happens here, so that an over-full
host fails `pulumi preview` before any resource is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._check import Ctx
from .host import HostSpec
from .image import BaseImageSpec
from .node import NodePolicies
from .vm import VmSpec


@dataclass(frozen=True)
class Allocation:
    """What the VMs placed on one host use of it."""

    host: str
    vms: tuple[str, ...]
    vcpus: int
    memory_mib: int
    vcpu_limit: float
    memory_limit_mib: float


@dataclass(frozen=True)
class Topology:
    """Everything a stack declares. Construction validates references and capacity.

    Example::

        Topology(hosts=(HostSpec("local", domain_type="qemu", vcpus=2, memory_mib=4096),),
                 images=(BaseImageSpec("debian", "local", "/srv/base.qcow2"),),
                 vms=(VmSpec("vm1", "local", "debian"),))
    """

    hosts: tuple[HostSpec, ...] = ()
    images: tuple[BaseImageSpec, ...] = ()
    vms: tuple[VmSpec, ...] = ()
    nodes: tuple[NodePolicies, ...] = ()
    allocations: tuple[Allocation, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        hosts = _unique("HypervisorHost", [h.name for h in self.hosts])
        by_name = {h.name: h for h in self.hosts}
        images: dict[tuple[str, str], BaseImageSpec] = {}
        for img in self.images:
            if img.host not in hosts:
                raise Ctx("BaseImage", img.name).fail("host", img.host, _one_of(hosts, "declared hosts"))
            if (img.host, img.name) in images:
                raise Ctx("BaseImage", img.name).fail("name", img.name, f"a name not yet used on host {img.host!r}")
            images[(img.host, img.name)] = img
            if img.format != "raw" and by_name[img.host].kind == "bhyve":
                raise Ctx("BaseImage", img.name).fail(
                    "format", img.format,
                    f"'raw' on bhyve host {img.host!r} (bhyve reads raw files, zvols and devices; it has no qcow2)")
        by_host: dict[str, list[VmSpec]] = {h: [] for h in hosts}
        ports: dict[int, str] = {}
        for vm in self.vms:
            ctx = Ctx("VirtualMachine", vm.name)
            if vm.host not in hosts:
                raise ctx.fail("host", vm.host, _one_of(hosts, "declared hosts"))
            if (vm.host, vm.image) not in images:
                on_host = sorted(n for h, n in images if h == vm.host)
                raise ctx.fail("image", vm.image, _one_of(on_host, f"images declared on host {vm.host!r}"))
            if any(other.name == vm.name for other in by_host[vm.host]):
                raise ctx.fail("name", vm.name, f"a domain name not yet used on host {vm.host!r}")
            if vm.boot == "kernel" and images[(vm.host, vm.image)].kernel is None:
                raise ctx.fail("boot", vm.boot, f"'bootloader' (image {vm.image!r} declares no kernel)")
            host = by_name[vm.host]
            if vm.boot == "kernel" and not host.boots_kernel:
                raise ctx.fail("boot", vm.boot, f"'bootloader' on {host.kind} host {vm.host!r} (its libvirt driver "
                                                "boots the VM's disk, never a kernel from a host path)")
            if vm.ssh_port is not None and host.kind in ("hyperv", "bhyve"):
                raise ctx.fail("ssh_port", vm.ssh_port, f"none on {host.kind} host {vm.host!r} (the 127.0.0.1 "
                                                        "forward is QEMU user networking; the host's own network "
                                                        "reaches the VM)")
            if vm.ssh_port is not None:
                if vm.ssh_port in ports:
                    used_by = ports[vm.ssh_port]
                    raise ctx.fail("ssh_port", vm.ssh_port, f"a port no other VM forwards (used by {used_by!r})")
                ports[vm.ssh_port] = vm.name
            by_host[vm.host].append(vm)
        vm_by_name = {vm.name: vm for vm in self.vms}
        for h in self.hosts:
            if h.via_vm is None:
                continue
            ctx = Ctx("HypervisorHost", h.name)
            if h.via_vm not in vm_by_name:
                raise ctx.fail("via_vm", h.via_vm, _one_of(sorted(vm_by_name), "declared VMs"))
            vm = vm_by_name[h.via_vm]
            if self.host(vm.host).via_vm is not None or vm.host == h.name:
                raise ctx.fail("via_vm", h.via_vm, "a VM on a host reached directly (one level of nesting)")
            if vm.ssh_port is None or h.uri_port != vm.ssh_port:
                raise ctx.fail("uri", h.uri, f"a URI on port {vm.ssh_port} (the ssh_port of VM {vm.name!r})")
        node_names = set(hosts) | {vm.name for vm in self.vms}
        seen_nodes: set[str] = set()
        for n in self.nodes:
            if n.node not in node_names:
                raise Ctx("Node", n.node).fail("node", n.node, _one_of(sorted(node_names), "declared hosts and VMs"))
            if n.node in seen_nodes:
                raise Ctx("Node", n.node).fail("node", n.node, "one NodePolicies per node")
            seen_nodes.add(n.node)
        object.__setattr__(self, "allocations", tuple(_schedule(h, by_host[h.name]) for h in self.hosts))

    def host(self, name: str) -> HostSpec:
        return next(h for h in self.hosts if h.name == name)

    def image(self, host: str, name: str) -> BaseImageSpec:
        return next(i for i in self.images if i.host == host and i.name == name)


def _schedule(host: HostSpec, vms: list[VmSpec]) -> Allocation:
    """Place `vms` on `host` in declaration order; the first VM that does not fit is the error."""
    vcpu_limit = host.vcpus * host.cpu_overcommit
    mem_limit = host.memory_mib * host.memory_overcommit
    vcpus = mem = 0
    placed: list[str] = []
    for vm in vms:
        if vcpus + vm.vcpus > vcpu_limit:
            raise Ctx("VirtualMachine", vm.name).fail(
                "vcpus", vm.vcpus,
                f"at most {vcpu_limit - vcpus:g} on host {host.name!r} (capacity {host.vcpus} vcpus x "
                f"cpu_overcommit {host.cpu_overcommit:g}, {vcpus} already placed: {', '.join(placed) or 'none'})",
            )
        if mem + vm.memory_mib > mem_limit:
            raise Ctx("VirtualMachine", vm.name).fail(
                "memory_mib", vm.memory_mib,
                f"at most {mem_limit - mem:g} on host {host.name!r} (capacity {host.memory_mib} MiB x "
                f"memory_overcommit {host.memory_overcommit:g}, {mem} MiB already placed: "
                f"{', '.join(placed) or 'none'})",
            )
        vcpus += vm.vcpus
        mem += vm.memory_mib
        placed.append(vm.name)
    return Allocation(host.name, tuple(placed), vcpus, mem, vcpu_limit, mem_limit)


def _unique(kind: str, names: list[str]) -> list[str]:
    seen: list[str] = []
    for n in names:
        if n in seen:
            raise Ctx(kind, n).fail("name", n, f"a {kind} name not yet declared")
        seen.append(n)
    return seen


def _one_of(names: list[str], what: str) -> str:
    return f"one of the {what}: " + (", ".join(repr(n) for n in names) if names else "(none declared)")
