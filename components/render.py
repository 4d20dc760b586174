"""Render from templates/ (jinja2, StrictUndefined): the environment every renderer uses, and
the VM side (libvirt domains, the XSLT, cloud-init). Each policy kind renders its own files
(`ringzero.kinds.<kind>.render`) with `render()` from here.

The decisions (which directives, which flags) are made in Python, where unit tests see
them; the templates only lay values out. Example::

    from ringzero.kinds.slice.render import render_slice
    files = render_slice(SliceSpec("web.slice", cpu_weight=200))
    print(files["/etc/systemd/system/web.slice"])
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2

from .paths import templates_dir
from .spec import BaseImageSpec, HostSpec, VmSpec

SYSTEMD_DIR = "/etc/systemd/system"


def _systemd_escape(value: str) -> str:
    """Unit-file value escaping: '%' starts a specifier and '\\' an escape in systemd."""
    return value.replace("\\", "\\\\").replace("%", "%%")


def _autoescape(name: str | None) -> bool:
    return bool(name) and any(name.endswith(s) for s in (".xml.j2", ".xsl.j2", ".html.j2"))  # type: ignore[union-attr]


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["systemd"] = _systemd_escape
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


# ---- libvirt domains and cloud-init ------------------------------------------------------

def hostfwd(vm: VmSpec) -> str | None:
    """QEMU user-network backend forwarding 127.0.0.1:<ssh_port> to the guest's port 22."""
    return None if vm.ssh_port is None else f"user,id=rz0,hostfwd=tcp:127.0.0.1:{vm.ssh_port}-:22"


def kernel_cmdline(vm: VmSpec, image: BaseImageSpec, domain_type: str) -> str:
    root = image.root_device.replace("/dev/vd", "/dev/xvd") if domain_type == "xen" else image.root_device
    console = "hvc0" if domain_type == "xen" else "ttyS0"
    return " ".join(x for x in (f"root={root} rw console={console}", vm.kernel_args) if x)


def render_domain_xml(
    vm: VmSpec, host: HostSpec, image: BaseImageSpec, *, disk_path: str, seed_path: str,
    console_log: str,
) -> str:
    """A complete libvirt domain for review and schema validation (kvm, qemu or xen)."""
    dt = host.effective_domain_type
    xen = dt == "xen"
    return render(
        "libvirt/domain.xml.j2", vm=vm, host=host, image=image, domain_type=dt,
        machine="xenpv" if xen else "pc", os_type="linux" if xen else "hvm",
        boot_kernel=vm.boot == "kernel", cmdline=kernel_cmdline(vm, image, dt),
        features=[] if xen else ["acpi", "apic"],
        disk_path=disk_path, disk_target="xvda" if xen else "vda", disk_bus="xen" if xen else "virtio",
        seed_path=seed_path, seed_device="disk" if xen else "cdrom",
        seed_target="xvdb" if xen else "sda", seed_bus="xen" if xen else "sata",
        console_log=console_log, console_target="xen" if xen else "serial",
        hostfwd=None if xen else hostfwd(vm),
    )


def console_log_path(vm: VmSpec) -> str:
    return f"/var/log/libvirt/qemu/{vm.name}-console.log"


def render_domain_xslt(vm: VmSpec) -> str:
    """The XSLT applied to pulumi-libvirt's domain XML (headless, ACPI, console log, SSH forward)."""
    return render("libvirt/domain.xsl.j2", vm=vm, hostfwd=hostfwd(vm), console_log=console_log_path(vm))


def render_cloud_init(
    vm: VmSpec, *, authorized_keys: list[str], host_key_private: str, host_key_public: str,
    instance_id: str,
) -> tuple[str, str]:
    """(user-data, meta-data) for the NoCloud seed."""
    user_data = render(
        "cloud-init/user-data.j2", vm=vm, authorized_keys=authorized_keys,
        host_key_private=host_key_private, host_key_public=host_key_public,
    )
    meta_data = render("cloud-init/meta-data.j2", vm=vm, instance_id=instance_id)
    return user_data, meta_data
