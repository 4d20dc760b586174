"""VirtualMachine: an overlay disk on a BaseImage, a cloud-init seed and a libvirt domain."""

from __future__ import annotations

import subprocess
import time

import pulumi
import pulumi_libvirt as libvirt

from .host import HypervisorHost
from .image import BaseImage
from .render import console_log_path, kernel_cmdline, render_cloud_init, render_domain_xslt
from .spec import VmSpec
from .ssh import SshReady, known_hosts_line

GIB = 1024**3
SHUTDOWN_TIMEOUT_S = 120


def _domstate(uri: str, domain: str) -> str:
    res = subprocess.run(["virsh", "-q", "-c", uri, "domstate", domain], capture_output=True, text=True, timeout=60)
    return res.stdout.strip() if res.returncode == 0 else ""


def shut_down_cleanly(uri: str, domain: str, timeout_s: int = SHUTDOWN_TIMEOUT_S) -> bool:
    """ACPI shutdown and wait for 'shut off'; True when the guest stopped by itself.

    pulumi-libvirt powers a running domain off when it deletes or replaces it (a memory
    change replaces the domain, never its disk): this lets the guest flush and stop first.
    """
    if _domstate(uri, domain) != "running":
        return True
    subprocess.run(["virsh", "-q", "-c", uri, "shutdown", domain], capture_output=True, text=True, timeout=60)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _domstate(uri, domain) in ("shut off", ""):
            return True
        time.sleep(1)
    return False


def graceful_shutdown_hook(uri: str, domain: str) -> pulumi.ResourceHook:
    def before_delete(_args: pulumi.ResourceHookArgs) -> None:
        if not shut_down_cleanly(uri, domain):
            pulumi.log.warn(f"VirtualMachine '{domain}': no clean shutdown within {SHUTDOWN_TIMEOUT_S} s; powering off")

    return pulumi.ResourceHook(f"ringzero-shutdown-{domain}-{uri}", before_delete)


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
        ssh_timeout_s: int = 300,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ringzero:index:VirtualMachine", name, None, opts)
        self.spec = spec
        child = pulumi.ResourceOptions(parent=self, provider=host.provider)
        pool = host.spec.pool
        self.disk = libvirt.Volume(
            f"{name}-disk",
            name=f"{spec.name}.qcow2",
            pool=pool,
            base_volume_id=image.volume.id,
            format="qcow2",
            size=spec.disk_gib * GIB if spec.disk_gib else None,
            opts=child,
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
            opts=child,
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
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                delete_before_replace=True,
                hooks=pulumi.ResourceHookBinding(before_delete=[graceful_shutdown_hook(host.spec.uri, spec.name)]),
            )),
        )
        self.ready: SshReady | None = None
        if access_private_key is not None and spec.ssh_port is not None and spec.running:
            self.ready = SshReady(
                f"{name}-ssh-ready", vm=spec.name, host="127.0.0.1", port=spec.ssh_port, user=spec.ssh_user,
                private_key=access_private_key, host_public_key=host_key_public, domain_id=self.domain.id,
                console_log=self.console_log, timeout_s=ssh_timeout_s,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.domain]),
            )
        self.ssh_host = pulumi.Output.from_input("127.0.0.1")
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
