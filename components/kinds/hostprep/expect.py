"""Host preparation on the node, one table per hypervisor kind: what the plan installs and sets,
and what the checks then read back (packages, module parameters, GRUB's view)."""

from __future__ import annotations

from .spec import HostPrepSpec

PACKAGES = {
    "kvm": ("qemu-system-x86", "libvirt-daemon-system", "libvirt-clients"),
    "xen": ("xen-system-amd64",),
}
KVM_PACKAGES = PACKAGES["kvm"]
XEN_PACKAGES = PACKAGES["xen"]
KVM_MODULES = ("kvm_intel", "kvm_amd")
KVM_MODPROBE = "/etc/modprobe.d/ringzero-kvm.conf"
XEN_GRUB = "/etc/default/grub.d/ringzero-xen.cfg"
XEN_GRUB_DEFAULT = "Debian GNU/Linux, with Xen hypervisor"
CONFIG_FILE = {"kvm": KVM_MODPROBE, "xen": XEN_GRUB}


def module_params(spec: HostPrepSpec) -> list[tuple[str, str, str]]:
    """(module, parameter, value) the modprobe options set and the loaded modules must show."""
    if spec.kind != "kvm":
        return []
    return [(m, "nested", str(int(spec.nested_virt))) for m in KVM_MODULES]


def xen_cmdline(spec: HostPrepSpec) -> str:
    """dom0 memory fixed at the declared size (no ballooning), as Xen's docs recommend."""
    return f"dom0_mem={spec.dom0_memory_mib}M,max:{spec.dom0_memory_mib}M"


def grub(spec: HostPrepSpec) -> dict[str, str]:
    """GRUB variable -> value: what the Xen drop-in sets and grub-mkconfig must then see."""
    if spec.kind != "xen":
        return {}
    return {"GRUB_DEFAULT": XEN_GRUB_DEFAULT, "GRUB_CMDLINE_XEN_DEFAULT": xen_cmdline(spec)}
