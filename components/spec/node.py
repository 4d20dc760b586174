"""NodePolicies: every kernel policy declared for one node (a VM or a hypervisor host)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..kinds.apparmor.spec import AppArmorProfileSpec
from ..kinds.ebpf.spec import EbpfAgentSpec
from ..kinds.firewall.spec import FirewallSpec
from ..kinds.fsview.spec import FilesystemViewSpec
from ..kinds.landlock.spec import LandlockSpec
from ..kinds.namespaces.spec import NamespacesSpec
from ..kinds.seccomp.spec import SeccompProfileSpec
from ..kinds.service.spec import ServiceSpec
from ..kinds.slice.spec import SliceSpec
from ..kinds.sockfilter.spec import SocketFilterSpec
from ._check import Ctx
from .confined import ConfinedServiceSpec


@dataclass(frozen=True)
class NodePolicies:
    """The policies of one node, checked together (duplicates, slice parents).

    Example::

        NodePolicies(node="vm1", slices=(SliceSpec("web.slice", cpu_weight=200),))
    """

    node: str
    slices: tuple[SliceSpec, ...] = ()
    apparmor: tuple[AppArmorProfileSpec, ...] = ()
    seccomp: tuple[SeccompProfileSpec, ...] = ()
    ebpf: tuple[EbpfAgentSpec, ...] = ()
    # Workload services ringzero installs (so that slices and seccomp profiles can confine them).
    services: tuple[ServiceSpec, ...] = ()
    # Namespaces its services get privately (NamespacesSpec), their filesystem views (FilesystemViewSpec).
    namespaces: tuple[NamespacesSpec, ...] = ()
    fsviews: tuple[FilesystemViewSpec, ...] = ()
    # Landlock rulesets; each starts its services (ServiceSpecs) through ringzero's launcher.
    landlock: tuple[LandlockSpec, ...] = ()
    # Apply the hypervisor host preparation of this host kind ("kvm" or "xen") to the node.
    host_prep: str | None = None
    # Node firewalls (nftables tables of ringzero's own) and per-service socket filters (cgroup eBPF).
    firewall: tuple[FirewallSpec, ...] = ()
    sockfilter: tuple[SocketFilterSpec, ...] = ()
    # Workloads declared with everything that confines them; each unfolds into the fields above
    # (its service, slice, profiles, ...) when the node is built, and is then left empty.
    confined: tuple[ConfinedServiceSpec, ...] = ()

    def __post_init__(self) -> None:
        ctx = Ctx("Node", str(self.node))
        self._unfold_confined(ctx)
        ctx.rfc1123("node", self.node)
        if self.host_prep is not None:
            ctx.choice("host_prep", self.host_prep, ("kvm", "xen"))
        for kind, items in (
            ("slices", self.slices), ("apparmor", self.apparmor),
            ("seccomp", self.seccomp), ("ebpf", self.ebpf), ("services", self.services),
            ("namespaces", self.namespaces), ("fsviews", self.fsviews),
            ("landlock", self.landlock), ("firewall", self.firewall), ("sockfilter", self.sockfilter),
        ):
            seen: set[str] = set()
            for item in items:
                if item.name in seen:
                    raise ctx.fail(f"{kind}", item.name, f"each {kind} name once per node")
                seen.add(item.name)
        declared = {s.name for s in self.slices}
        for s in self.slices:
            if s.parent is not None and s.parent not in declared:
                raise Ctx("CgroupSlice", s.name).fail(
                    "name", s.name,
                    f"a nested slice whose parent {s.parent!r} is declared on node {self.node!r} "
                    f"(declared: {', '.join(sorted(declared))})",
                )
        placed: dict[str, str] = {}
        for s in self.slices:
            for svc in s.services:
                if svc in placed:
                    raise Ctx("CgroupSlice", s.name).fail(
                        "services", svc, f"a service in one slice only (already in {placed[svc]!r})"
                    )
                placed[svc] = s.name
        self._check_network()
        from ..kinds.namespaces.spec import check_node as check_namespaces

        check_namespaces(self)
        self._check_files(ctx)

    def _check_network(self) -> None:
        """One Firewall's rules per slice, one SocketFilter per service: two declarations claiming
        one workload's traffic would each be half of its policy."""
        matched: dict[str, str] = {}
        for fw in self.firewall:
            for i, rule in enumerate(fw.rules):
                if rule.slice is None:
                    continue
                first = matched.setdefault(rule.slice, fw.name)
                if first != fw.name:
                    raise Ctx("Firewall", fw.name).fail(
                        f"rules[{i}].slice", rule.slice, f"a slice matched by one Firewall per node (already by "
                        f"Firewall {first!r} on node {self.node!r})")
        filtered: dict[str, str] = {}
        for sf in self.sockfilter:
            for i, svc in enumerate(sf.services):
                first = filtered.setdefault(svc, sf.name)
                if first != sf.name:
                    raise Ctx("SocketFilter", sf.name).fail(
                        f"services[{i}]", svc, f"a service in one SocketFilter per node (already in {first!r} on "
                        f"node {self.node!r})")

    def _unfold_confined(self, ctx: Ctx) -> None:
        """Each confined service's parts join the node's specs of their kinds (checked with them
        below: a part's name used twice is refused like any other)."""
        if not isinstance(self.confined, tuple):
            raise ctx.fail("confined", self.confined, "a tuple of ConfinedServiceSpec")
        added: dict[str, list[Any]] = {}
        for c in self.confined:
            if not isinstance(c, ConfinedServiceSpec):
                raise ctx.fail("confined", c, "ConfinedServiceSpec values")
            for field, part in c.parts().items():
                added.setdefault(field, []).append(part)
        for field, parts in added.items():
            object.__setattr__(self, field, (*getattr(self, field), *parts))
        object.__setattr__(self, "confined", ())

    def _check_files(self, ctx: Ctx) -> None:
        """Two policies never write one file: each path a policy renders (or an agent's bpftrace
        writes) has one owner on the node, or applying one would overwrite the other."""
        from ..kinds import registry  # the kinds' renderers import the specs
        from .host import HostSpec

        owners: dict[str, str] = {}

        def claim(paths: Iterable[str], who: str) -> None:
            for path in paths:
                first = owners.setdefault(path, who)
                if first != who:
                    raise ctx.fail("files", path, f"one policy per file on a node: {path} is written by "
                                   f"both {first} and {who}")

        # Which files a spec writes does not depend on its host's settings: HostSpec defaults do.
        host = HostSpec(name=self.node)
        installed = {s.name for s in self.services}
        for kind in registry():
            for spec in kind.declared(self, host):
                for service in kind.wraps(spec):
                    if service not in installed:
                        raise ctx.fail("services", service, f"a service ringzero installs on node {self.node!r} "
                                       f"(a ServiceSpec) for {kind.owner(spec)}: it starts the service through "
                                       "a launcher, which needs the service's own command")
                claim(kind.render(spec), kind.owner(spec))
                for path, who in kind.also_writes(spec):
                    claim([path], who)

    @property
    def is_empty(self) -> bool:
        return not (self.slices or self.apparmor or self.seccomp or self.ebpf or self.services or self.host_prep
                    or self.landlock
                    or self.firewall or self.sockfilter
                    or self.namespaces or self.fsviews)
