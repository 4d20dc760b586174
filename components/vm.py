"""VirtualMachine: an overlay disk on a BaseImage, a cloud-init seed and a libvirt domain."""

from __future__ import annotations

import pulumi
import pulumi_libvirt as libvirt

from .guest import GuestLifecycle
from .host import HypervisorHost
from .image import BaseImage
from .render import console_log_path, kernel_cmdline, render_cloud_init, render_domain_xslt
from .spec import VmSpec
from .ssh import SshReady, known_hosts_line

GIB = 1024**3


def cmdline_args(cmdline: str) -> list[dict[str, str]]:
    """The kernel command line in the form the provider reads back (so refresh sees no diff):
    key=value words in one map (a repeated key starts the next), bare words joined under '_'.
    """
    maps: list[dict[str, str]] = [{}]
    bare: list[str] = []
    for word in cmdline.split():
        key, sep, value = word.partition("=")
        if not sep:
            bare.append(word)
            continue
        if key in maps[-1]:
            maps.append({})
        maps[-1][key] = value
    args = [m for m in maps if m]
    return args + ([{"_": " ".join(bare)}] if bare else [])


class VirtualMachine(pulumi.ComponentResource):
    """A guest reachable over SSH with a host key ringzero generated (so clients can pin it).

    Example::

        vm = VirtualMachine("vm1", VmSpec("vm1", "local", "debian-12", ssh_port=2201),
                            host=local, image=image,
                            authorized_keys=[access.public_key],
                            host_key_private=hk.private_key, host_key_public=hk.public_key)
    """

    def __init__(
        self,
        name: str,
        spec: VmSpec,
        *,
        host: HypervisorHost,
        image: BaseImage,
        authorized_keys: list[pulumi.Input[str]],
        host_key_private: pulumi.Input[str],
        host_key_public: pulumi.Input[str],
        access_private_key: pulumi.Input[str] | None = None,
        host_known_hosts: pulumi.Input[str] | None = None,
        ssh_timeout_s: int = 300,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ringzero:index:VirtualMachine", name, None, opts)
        self.spec = spec
        child = host.placed(self)
        # named volumes in the pool (the name is their identity): replaced by deleting first
        named = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(delete_before_replace=True))
        pool = host.spec.pool
        self.disk = libvirt.Volume(
            f"{name}-disk",
            name=f"{spec.name}.qcow2",
            pool=pool,
            base_volume_id=image.volume.id,
            format="qcow2",
            size=spec.disk_gib * GIB if spec.disk_gib else None,
            opts=named,
        )
        cloud = pulumi.Output.all(
            pulumi.Output.all(*authorized_keys),
            pulumi.Output.secret(host_key_private),
            pulumi.Output.from_input(host_key_public),
        ).apply(
            lambda a: render_cloud_init(
                spec, authorized_keys=list(a[0]), host_key_private=a[1], host_key_public=a[2],
                instance_id=f"ringzero-{spec.name}",
            )
        )
        self.seed = libvirt.CloudInitDisk(
            f"{name}-seed",
            name=f"{spec.name}-seed.iso",
            pool=pool,
            user_data=pulumi.Output.secret(cloud[0]),
            meta_data=cloud[1],
            opts=named,
        )
        img = image.spec
        direct = spec.boot == "kernel"
        self.console_log = console_log_path(spec)
        self.domain = libvirt.Domain(
            f"{name}-domain",
            name=spec.name,
            type=host.spec.effective_domain_type,
            vcpu=spec.vcpus,
            memory=spec.memory_mib,
            kernel=img.kernel if direct else None,
            initrd=img.initrd if direct else None,
            cmdlines=cmdline_args(kernel_cmdline(spec, img, host.spec.effective_domain_type)) if direct else None,
            disks=[libvirt.DomainDiskArgs(volume_id=self.disk.id)],
            cloudinit=self.seed.id,
            qemu_agent=False,
            autostart=False,
            running=spec.running,
            xml=libvirt.DomainXmlArgs(xslt=render_domain_xslt(spec)),
            # memory and vCPUs change in place through GuestLifecycle, never by a replacement
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                delete_before_replace=True, ignore_changes=["memory", "vcpu"])),
        )
        # Sizes the domain in place, and shuts the guest down through ACPI before the domain is
        # removed (its delete runs first: the domain's id is one of its inputs). A host reached
        # over SSH gets the key and its pinned host key as inputs: plain `pulumi destroy` has them.
        remote = host.spec.via_vm is not None
        self.lifecycle = GuestLifecycle(
            f"{name}-lifecycle", domain=spec.name, domain_id=self.domain.id, host_uri=host.spec.uri,
            memory_mib=spec.memory_mib, vcpus=spec.vcpus,
            private_key=access_private_key if remote else None, known_hosts=host_known_hosts if remote else None,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.domain]),
        )
        self.ready: SshReady | None = None
        if access_private_key is not None and spec.ssh_port is not None and spec.running:
            self.ready = SshReady(
                f"{name}-ssh-ready", vm=spec.name, host="127.0.0.1", port=spec.ssh_port, user=spec.ssh_user,
                private_key=access_private_key, host_public_key=host_key_public, domain_id=self.domain.id,
                console_log=self.console_log, timeout_s=ssh_timeout_s, boots=self.lifecycle.restarts,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.domain, self.lifecycle]),
            )
        self.ssh_port = pulumi.Output.from_input(spec.ssh_port)
        self.known_hosts = pulumi.Output.from_input(host_key_public).apply(
            lambda key: known_hosts_line("127.0.0.1", spec.ssh_port, key) if spec.ssh_port else ""
        )
        self.ssh_endpoint = pulumi.Output.from_input(
            f"{spec.ssh_user}@127.0.0.1:{spec.ssh_port}" if spec.ssh_port else ""
        )
        self.register_outputs({
            "name": spec.name,
            "host": spec.host,
            "sshEndpoint": self.ssh_endpoint,
            "knownHosts": self.known_hosts,
            "consoleLog": self.console_log,
            "domainId": self.domain.id,
        })
