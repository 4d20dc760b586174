"""An edge site declared in Python with ringzero installed from its wheel.

One KVM host, one VM, and the VM's kernel policies: a slice for the edge proxy, its
AppArmor profile and a seccomp deny list, and an eBPF agent watching exec calls.
"""

import pulumi

from ringzero.spec import (
    AppArmorProfileSpec,
    BaseImageSpec,
    EbpfAgentSpec,
    FileRule,
    HostSpec,
    NodePolicies,
    SeccompProfileSpec,
    SliceSpec,
    SyscallRule,
    Topology,
    VmSpec,
)
from ringzero.stack import deploy

config = pulumi.Config()
image_dir = config.get("imageDir") or "/var/lib/ringzero/images"

topology = Topology(
    hosts=(HostSpec("edge-host", kind="kvm", uri=config.get("libvirtUri") or "qemu:///system",
                    vcpus=4, memory_mib=8192),),
    images=(BaseImageSpec("debian-12", "edge-host", f"{image_dir}/base.qcow2",
                          kernel=f"{image_dir}/vmlinuz", initrd=f"{image_dir}/initrd.img"),),
    vms=(VmSpec("edge-proxy", "edge-host", "debian-12", vcpus=2, memory_mib=2048, ssh_port=2301),),
    nodes=(
        NodePolicies(
            "edge-proxy",
            slices=(SliceSpec("proxy.slice", cpu_weight=500, memory_max="1G", services=("haproxy.service",)),),
            apparmor=(AppArmorProfileSpec("edge-haproxy", attach="/usr/sbin/haproxy",
                                          files=(FileRule("/etc/haproxy/**", "r"),),
                                          capabilities=("net_bind_service",)),),
            seccomp=(SeccompProfileSpec("proxy-no-ptrace", default_action="SCMP_ACT_ALLOW",
                                        rules=(SyscallRule(("ptrace", "process_vm_readv"), "SCMP_ACT_ERRNO"),),
                                        services=("haproxy.service",)),),
            ebpf=(EbpfAgentSpec("execsnoop", tool="execsnoop.bt"),),
        ),
    ),
)

deployed = deploy(topology)
pulumi.export("vms", deployed.vm_outputs())
