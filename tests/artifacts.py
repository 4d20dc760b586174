"""Every artifact of a declaration, rendered: what the golden and validate tiers check."""

from __future__ import annotations

from ringzero.artifacts import artifacts, domain_xml
from ringzero.spec import BaseImageSpec, HostSpec, Topology, VmSpec

# A fixed host key so that golden files are stable; never a real key.
FAKE_HOST_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKE\n-----END OPENSSH PRIVATE KEY-----\n"
FAKE_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKE root@vm"

XEN_HOST = HostSpec("xen1", kind="xen", uri="xen:///system", vcpus=8, memory_mib=16384)
KVM_HOST = HostSpec("kvm1", kind="kvm", uri="qemu:///system", vcpus=8, memory_mib=16384)
# Declared and rendered only: neither driver exists on this machine (see the README).
BHYVE_HOST = HostSpec("bhyve1", kind="bhyve", uri="bhyve+ssh://root@freebsd1.example/system", vcpus=8,
                      memory_mib=16384)
HYPERV_HOST = HostSpec("hyperv1", kind="hyperv", uri="hyperv://administrator@hv1.example/?transport=https",
                       vcpus=8, memory_mib=16384)


def domain_xmls(topology: Topology) -> dict[str, str]:
    """Domain XML for each VM of `topology`, plus the first VM on a kvm, a xen, a bhyve and a
    Hyper-V host (booting its disk there, with no QEMU SSH forward: what those hosts need)."""
    out: dict[str, str] = {}
    vms = list(topology.vms)
    for vm in vms:
        host = topology.host(vm.host)
        out[f"domain-{host.effective_domain_type}-{vm.name}.xml"] = _domain(vm, host, topology.image(vm.host, vm.image))
    if vms:
        vm, img = vms[0], topology.image(vms[0].host, vms[0].image)
        for host in (KVM_HOST, XEN_HOST):
            moved = VmSpec(**{**vm.__dict__, "host": host.name})
            out[f"domain-{host.effective_domain_type}-{vm.name}.xml"] = _domain(
                moved, host, BaseImageSpec(**{**img.__dict__, "host": host.name})
            )
        for host in (BHYVE_HOST, HYPERV_HOST):
            moved = VmSpec(**{**vm.__dict__, "host": host.name, "boot": "bootloader", "ssh_port": None})
            raw = BaseImageSpec(**{**img.__dict__, "host": host.name, "format": "raw"})
            out[f"domain-{host.effective_domain_type}-{vm.name}.xml"] = _domain(moved, host, raw)
    return out


def _domain(vm: VmSpec, host: HostSpec, img: BaseImageSpec) -> str:
    return domain_xml(vm, host, img)


def all_artifacts(topology: Topology) -> dict[str, str]:
    """name -> text for every artifact (the library's `artifacts`), with fixed fake keys."""
    return {**domain_xmls(topology), **artifacts(topology, access_key="ssh-ed25519 AAAA access@test",
                                                 host_key_private=FAKE_HOST_KEY, host_key_public=FAKE_PUB)}
