"""HypervisorHost: a KVM or Xen host and the libvirt provider that reaches it."""

from __future__ import annotations

import pulumi
import pulumi_libvirt as libvirt

from .spec import HostSpec


class HypervisorHost(pulumi.ComponentResource):
    """One libvirt endpoint. VMs and images placed on it use its `provider`.

    Example::

        local = HypervisorHost("local", HostSpec("local", uri="qemu:///system",
                                                 domain_type="qemu", vcpus=2, memory_mib=4096))
    """

    def __init__(
        self, name: str, spec: HostSpec, *, uri: pulumi.Input[str] | None = None,
        ready_after: list[pulumi.Resource] | None = None, opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`uri` overrides spec.uri with the URI to connect with (ssh key and known_hosts added);
        `ready_after`: what must be done before the host is used (its libvirtd installed and
        started). The resources placed on the host wait for it (`placed`), not the provider:
        pulumi-libvirt as ringzero builds it connects on first use (tools/pulumi/libvirt/lazy.go),
        so the provider can be configured from the start, and a no-op run does not wait for its
        plugin to start behind the host's own VM and policies."""
        super().__init__("ringzero:index:HypervisorHost", name, None, opts)
        self.spec = spec
        self.ready_after = list(ready_after or [])
        self.provider = libvirt.Provider(
            f"{name}-libvirt", uri=uri if uri is not None else spec.uri, opts=pulumi.ResourceOptions(parent=self),
        )
        self.uri = pulumi.Output.from_input(spec.uri)
        self.kind = pulumi.Output.from_input(spec.kind)
        self.domain_type = pulumi.Output.from_input(spec.effective_domain_type)
        self.register_outputs({"uri": self.uri, "kind": self.kind, "domainType": self.domain_type})

    def placed(self, parent: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options of a resource placed on this host: under `parent`, through the host's
        provider, after `ready_after`."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, depends_on=self.ready_after or None)
