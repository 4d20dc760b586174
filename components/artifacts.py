"""Every artifact a declaration renders, by file name: for review (`ringzero render`), golden
files and validators. Nothing here is secret: keys generated at `pulumi up` are placeholders.

    artifacts(topology)
    # {"domain-qemu-vm1.xml": "<domain …", "domain-vm1.xsl": …, "cloud-init-vm1-user-data": …,
    #  "vm1/etc/systemd/system/web.slice": …, "vm1/etc/apparmor.d/ringzero.demo-web": …, …}
"""

from __future__ import annotations

from .plan import node_plan
from .render import domain_paths, render_cloud_init, render_domain_xml, render_domain_xslt
from .spec import BaseImageSpec, HostSpec, Topology, VmSpec

# Placeholders for what `pulumi up` generates (and keeps as secrets): never a real key.
ACCESS_KEY_PLACEHOLDER = "ssh-ed25519 AAAA<access-key-generated-by-pulumi-up> ringzero@stack"
HOST_KEY_PLACEHOLDER = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nGENERATED-BY-PULUMI-UP\n-----END OPENSSH PRIVATE KEY-----\n"
)
HOST_PUB_PLACEHOLDER = "ssh-ed25519 AAAA<host-key-generated-by-pulumi-up> root@vm"


def domain_xml(vm: VmSpec, host: HostSpec, img: BaseImageSpec) -> str:
    disk, seed = domain_paths(vm, host)
    return render_domain_xml(vm, host, img, disk_path=disk, seed_path=seed,
                             console_log=f"/var/log/libvirt/qemu/{vm.name}-console.log")


def artifacts(
    topology: Topology, *, access_key: str = ACCESS_KEY_PLACEHOLDER,
    host_key_private: str = HOST_KEY_PLACEHOLDER, host_key_public: str = HOST_PUB_PLACEHOLDER,
) -> dict[str, str]:
    """name -> text: each VM's domain XML and XSLT and cloud-init seed, each node's files
    (slices, service units and drop-ins, AppArmor profiles, seccomp JSON, eBPF agent units
    and programs, host preparation)."""
    out: dict[str, str] = {}
    for vm in topology.vms:
        host, image = topology.host(vm.host), topology.image(vm.host, vm.image)
        out[f"domain-{host.effective_domain_type}-{vm.name}.xml"] = domain_xml(vm, host, image)
    for vm in topology.vms:
        # The XSLT adjusts what pulumi-libvirt defines on QEMU and Xen hosts; a bhyve or Hyper-V
        # VM is reviewed and defined from its domain XML (see the README).
        if topology.host(vm.host).kind in ("kvm", "xen"):
            out[f"domain-{vm.name}.xsl"] = render_domain_xslt(vm)
        ud, md = render_cloud_init(vm, authorized_keys=[access_key], host_key_private=host_key_private,
                                   host_key_public=host_key_public, instance_id=f"ringzero-{vm.name}")
        out[f"cloud-init-{vm.name}-user-data"] = ud
        out[f"cloud-init-{vm.name}-meta-data"] = md
    for node in topology.nodes:
        for path, file in node_plan(topology, node.node)["files"].items():
            out[f"{node.node}{path}"] = file["content"]
    return out
