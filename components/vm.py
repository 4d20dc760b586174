"""VirtualMachine: an overlay disk on a BaseImage, a cloud-init seed and a libvirt domain."""

from __future__ import annotations

import shlex
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pulumi
import pulumi_libvirt as libvirt

from . import keyfiles
from .host import HypervisorHost
from .image import BaseImage
from .render import console_log_path, kernel_cmdline, render_cloud_init, render_domain_xslt
from .spec import VmSpec
from .ssh import SshReady, known_hosts_line

GIB = 1024**3
SHUTDOWN_TIMEOUT_S = 120


class VirshError(RuntimeError):
    """virsh could not answer (connection, permissions, ...): the domain's state is unknown."""


# virsh's answers when the domain is not there at all (removed by hand, say): nothing to shut down
_NO_DOMAIN = ("Domain not found", "failed to get domain")


def _virsh(uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True, timeout=60,
                          env=keyfiles.safe_env())


def _shown(uri: str) -> str:
    return uri.split("?", 1)[0]


def domain_state(uri: str, domain: str) -> str | None:
    """`virsh domstate`: "running", "shut off", ...; None when the domain does not exist.

    Raises VirshError when virsh fails otherwise: a failure is never read as "not running".
    """
    res = _virsh(uri, "domstate", domain)
    if res.returncode == 0:
        return res.stdout.strip()
    err = " ".join(res.stderr.split()) or f"exit {res.returncode}"
    if any(m in err for m in _NO_DOMAIN):
        return None
    raise VirshError(f"virsh domstate on {_shown(uri)} failed: {err}")


def shut_down_cleanly(uri: str, domain: str, timeout_s: float = SHUTDOWN_TIMEOUT_S, poll_s: float = 1.0) -> str:
    """ACPI shutdown and wait for 'shut off'. Returns "" when the guest is down (or was never
    up, or is gone), else why it is not (then the provider forces it off). Raises VirshError.

    pulumi-libvirt powers a running domain off when it deletes or replaces it (a memory
    change replaces the domain, never its disk): this lets the guest flush and stop first.
    """
    state = domain_state(uri, domain)
    if state in (None, "shut off", "crashed"):
        return ""
    if state in ("paused", "pmsuspended"):
        return f"it is {state} and cannot shut down through ACPI"
    if state != "in shutdown":
        res = _virsh(uri, "shutdown", domain)
        if res.returncode != 0:
            err = " ".join(res.stderr.split()) or f"exit {res.returncode}"
            raise VirshError(f"virsh shutdown on {_shown(uri)} failed: {err}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = domain_state(uri, domain)
        if state in (None, "shut off"):
            return ""
        time.sleep(poll_s)
    return f"still {state!r} {timeout_s:g} s after the ACPI shutdown request"


def virsh_uri(uri: str, tmp: Path) -> str:
    """The provider's URI as virsh takes it: the same key and pinned host keys.

    The Go provider reads `keyfile`, `knownhosts` and `sshauth` (ringzero.stack adds them
    for a host reached over qemu+ssh). libvirt's ssh transport takes `keyfile` too but no
    known_hosts file: its `command` (the ssh binary it runs) becomes a script in `tmp` that
    runs ssh with that file and strict host-key checking.
    """
    parts = urllib.parse.urlsplit(uri)
    params = urllib.parse.parse_qsl(parts.query)
    known_hosts = next((v for k, v in params if k == "knownhosts"), None)
    if "+ssh" not in parts.scheme or known_hosts is None:
        return uri
    wrapper = tmp / "ssh"
    args = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes"]
    keyfiles.write_secret(wrapper, "#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in args) + ' "$@"\n')
    wrapper.chmod(0o700)
    kept = [(k, v) for k, v in params if k not in ("knownhosts", "sshauth", "command", "no_verify")]
    query = urllib.parse.urlencode([*kept, ("command", str(wrapper)), ("no_tty", "1")], safe="/")
    return urllib.parse.urlunsplit(parts._replace(query=query))


def shutdown_before_delete(
    uri: str, domain: str, timeout_s: float = SHUTDOWN_TIMEOUT_S, poll_s: float = 1.0,
    warn: Callable[[str], None] = pulumi.log.warn,
) -> None:
    """What the before_delete hook does: shut the guest down; say so loudly when it did not.

    virsh failing is an error naming the VM and why (nothing was powered off, the removal
    stops); a guest that does not stop in time is a warning saying it is being forced off.
    """
    with keyfiles.private_tempdir("ringzero-virsh-") as tmp:
        try:
            why = shut_down_cleanly(virsh_uri(uri, tmp), domain, timeout_s, poll_s)
        except VirshError as e:
            raise RuntimeError(f"VirtualMachine '{domain}': cannot shut it down before removing it: {e}") from None
    if why:
        warn(f"VirtualMachine '{domain}': no clean shutdown ({why}); it is being forced off (powered off)")


def graceful_shutdown_hook(uri: str, domain: str, connect_uri: pulumi.Input[str] | None = None) -> pulumi.ResourceHook:
    """`connect_uri`: what the host's provider connects with (key and known_hosts for qemu+ssh)."""
    resolved = [uri]
    if connect_uri is not None:
        pulumi.Output.from_input(connect_uri).apply(lambda u: resolved.__setitem__(0, u))

    def before_delete(_args: pulumi.ResourceHookArgs) -> None:
        shutdown_before_delete(resolved[0], domain)

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
        connect_uri: pulumi.Input[str] | None = None,
        ssh_timeout_s: int = 300,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ringzero:index:VirtualMachine", name, None, opts)
        self.spec = spec
        child = pulumi.ResourceOptions(parent=self, provider=host.provider)
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
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                delete_before_replace=True,
                hooks=pulumi.ResourceHookBinding(before_delete=[
                    graceful_shutdown_hook(host.spec.uri, spec.name, connect_uri)]),
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
