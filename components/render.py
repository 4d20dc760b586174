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
from typing import Any, NamedTuple

import jinja2

from . import domcaps
from .paths import cache_dir, templates_dir
from .spec import BaseImageSpec, HostSpec, SpecError, VmSpec

SYSTEMD_DIR = "/etc/systemd/system"


def _systemd_escape(value: str) -> str:
    """Unit-file value escaping: '%' starts a specifier and '\\' an escape in systemd."""
    return value.replace("\\", "\\\\").replace("%", "%%")


def _autoescape(name: str | None) -> bool:
    return bool(name) and any(name.endswith(s) for s in (".xml.j2", ".xsl.j2", ".html.j2"))  # type: ignore[union-attr]


def _template_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept across program runs (jinja2 checks each against its source's
    checksum): compiling them is a fifth of a program run's own time. None when the cache
    directory cannot be made (templates are then compiled each run)."""
    path = cache_dir() / "templates"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(path))


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=_template_cache(),
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


class Disk(NamedTuple):
    """One `<disk>` of a rendered domain, every value decided (the template lays it out)."""

    device: str  # disk | cdrom
    source: str
    target: str
    bus: str
    driver: tuple[str, str] | None  # <driver name= type=>; None where the driver does not read it
    readonly: bool = False
    drive: tuple[int, int, int] | None = None  # (controller, bus, unit) of an explicit drive address


# bhyve boots a Linux guest through UEFI firmware (bhyveload boots FreeBSD guests only); this is
# where sysutils/bhyve-firmware installs it, the bhyve driver's default firmware_dir.
BHYVE_UEFI_FIRMWARE = "/usr/local/share/uefi-firmware/BHYVE_UEFI.fd"
# Hyper-V's default folder for virtual hard disks (Windows Server 2016 and later).
HYPERV_VHD_DIR = "C:\\ProgramData\\Microsoft\\Windows\\Virtual Hard Disks"


def domain_paths(vm: VmSpec, host: HostSpec) -> tuple[str, str]:
    """(disk, cloud-init seed) of `vm` on `host`: a raw image for bhyve (it has no qcow2), a
    VHDX in Hyper-V's own folder, a qcow2 overlay in libvirt's default pool otherwise."""
    if host.kind == "hyperv":
        return f"{HYPERV_VHD_DIR}\\{vm.name}.vhdx", f"{HYPERV_VHD_DIR}\\{vm.name}-seed.iso"
    ext = "img" if host.kind == "bhyve" else "qcow2"
    return f"/var/lib/libvirt/images/{vm.name}.{ext}", f"/var/lib/libvirt/images/{vm.name}-seed.iso"


def render_domain_xml(
    vm: VmSpec, host: HostSpec, image: BaseImageSpec, *, disk_path: str, seed_path: str,
    console_log: str,
) -> str:
    """A complete libvirt domain for review and schema validation (kvm, qemu, xen, bhyve, hyperv)."""
    dt = host.effective_domain_type
    if vm.boot == "kernel" and not host.boots_kernel:
        raise SpecError("VirtualMachine", vm.name, "boot", vm.boot,
                        f"'bootloader' on {host.kind} host {host.name!r} (its libvirt driver boots the VM's disk)")
    if dt in ("bhyve", "hyperv"):
        # Their drivers refuse or drop what libvirt's schema accepts (an IDE disk on bhyve):
        # the rendered domain meets each driver's own rules (ringzero.domcaps) or nothing is written.
        text = _thin_driver_domain(vm, host, image, dt, disk_path, seed_path)
        caps = domcaps.driver_caps(dt)
        if caps is not None:
            domcaps.check(text, caps)
        return text
    xen = dt == "xen"
    return render(
        "libvirt/domain.xml.j2", vm=vm, host=host, image=image, domain_type=dt,
        machine="xenpv" if xen else "pc", os_type="linux" if xen else "hvm", loader=None,
        boot_kernel=vm.boot == "kernel", boot_dev="hd", cmdline=kernel_cmdline(vm, image, dt),
        features=[] if xen else ["acpi", "apic"], lifecycle=True,
        disks=[Disk("disk", disk_path, "xvda" if xen else "vda", "xen" if xen else "virtio", ("qemu", "qcow2")),
               Disk("disk" if xen else "cdrom", seed_path, "xvdb" if xen else "sda", "xen" if xen else "sata",
                    ("qemu", "raw"), readonly=True)],
        serial="pty", console_log=console_log, console_target="xen" if xen else "serial",
        hostfwd=None if xen else hostfwd(vm),
    )


def _thin_driver_domain(vm: VmSpec, host: HostSpec, image: BaseImageSpec, dt: str, disk_path: str,
                        seed_path: str) -> str:
    """The domain libvirt's bhyve or hyperv driver needs (neither boots a kernel from a path)."""
    if dt == "bhyve":
        # docs/drvbhyve.rst, bhyve_command.c: virtio or SATA disks (never IDE), the seed a SATA
        # cdrom, the UEFI loader, an nmdm serial port (com1) for `virsh console`.
        return render(
            "libvirt/domain.xml.j2", vm=vm, host=host, image=image, domain_type=dt, machine=None, os_type="hvm",
            loader=BHYVE_UEFI_FIRMWARE, boot_kernel=False, boot_dev=None, features=["acpi", "apic"],
            lifecycle=True,
            disks=[Disk("disk", disk_path, "vda", "virtio", ("file", "raw")),
                   Disk("cdrom", seed_path, "sda", "sata", ("file", "raw"), readonly=True)],
            serial="nmdm", nmdm=(f"/dev/nmdm-{vm.name}.1A", f"/dev/nmdm-{vm.name}.1B"), hostfwd=None,
        )
    # hyperv_driver.c DefineXML reads the name, vcpus, memory, disks on IDE/SCSI/floppy at
    # drive addresses, serial ports 'COM 1'/'COM 2' as named pipes and bridge NICs; it
    # ignores <os>, <features>, the lifecycle actions and <driver>. A generation 1 VM boots
    # from IDE: the disk on channel 0, the seed a DVD on channel 1.
    return render(
        "libvirt/domain.xml.j2", vm=vm, host=host, image=image, domain_type=dt, machine=None, os_type="hvm",
        loader=None, boot_kernel=False, boot_dev=None, features=[], lifecycle=False,
        disks=[Disk("disk", disk_path, "hda", "ide", None, drive=(0, 0, 0)),
               Disk("cdrom", seed_path, "hdc", "ide", None, readonly=True, drive=(0, 1, 0))],
        serial="pipe", pipe=f"\\\\.\\pipe\\ringzero-{vm.name}-com1", hostfwd=None,
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
