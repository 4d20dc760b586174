"""Render every artifact of a declaration from templates/ (jinja2, StrictUndefined).

The decisions (which directives, which flags) are made here in Python, where unit tests see
them; the templates only lay values out. Example::

    from ringzero.render import render_slice
    files = render_slice(SliceSpec("web.slice", cpu_weight=200))
    print(files["/etc/systemd/system/web.slice"])
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2

from .paths import templates_dir
from .spec import (
    AppArmorProfileSpec,
    BaseImageSpec,
    EbpfAgentSpec,
    HostSpec,
    SeccompProfileSpec,
    ServiceSpec,
    SliceSpec,
    VmSpec,
)

SYSTEMD_DIR = "/etc/systemd/system"
APPARMOR_DIR = "/etc/apparmor.d"
SECCOMP_DIRS = ("/etc/ringzero/seccomp", "/var/lib/kubelet/seccomp/profiles/ringzero")


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


# ---- cgroup v2 slices -------------------------------------------------------------------

def slice_directives(spec: SliceSpec) -> list[tuple[str, str]]:
    """The [Slice] section: systemd directive -> value, in a stable order."""
    out: list[tuple[str, str]] = []
    if spec.cpu_weight is not None:
        out.append(("CPUWeight", str(spec.cpu_weight)))
    if spec.cpu_quota_percent is not None:
        out.append(("CPUQuota", f"{spec.cpu_quota_percent}%"))
    for field, key in (("memory_min", "MemoryMin"), ("memory_low", "MemoryLow"),
                       ("memory_high", "MemoryHigh"), ("memory_max", "MemoryMax")):
        if spec.is_set(field):
            if spec.percent(field) is not None:
                # systemd resolves a percentage against the node's physical memory itself.
                out.append((key, str(getattr(spec, field))))
                continue
            b = spec.bytes(field)
            out.append((key, "infinity" if b is None else str(b)))
    if spec.io_weight is not None:
        out.append(("IOWeight", str(spec.io_weight)))
    if spec.tasks_max is not None:
        out.append(("TasksMax", str(spec.tasks_max)))
    return out


def render_slice(spec: SliceSpec) -> dict[str, str]:
    files = {
        f"{SYSTEMD_DIR}/{spec.name}": render(
            "etc/systemd/system/slice.slice.j2", spec=spec,
            description=spec.description or f"ringzero slice {spec.name}",
            directives=slice_directives(spec),
        )
    }
    for svc in spec.services:
        files[f"{SYSTEMD_DIR}/{svc}.d/ringzero-slice.conf"] = render(
            "etc/systemd/system/service-slice.conf.j2", spec=spec, service=svc
        )
    return files


# ---- AppArmor -----------------------------------------------------------------------------

def apparmor_rules(spec: AppArmorProfileSpec) -> list[str]:
    rules = [f"capability {c}" for c in spec.capabilities]
    rules += [
        ("deny " if n.deny else "") + " ".join(x for x in ("network", n.family, n.type) if x)
        for n in spec.network
    ]
    rules += [("deny " if r.deny else "") + f"{r.path} {r.perms}" for r in spec.files]
    return rules


def render_apparmor(spec: AppArmorProfileSpec) -> dict[str, str]:
    path = f"{APPARMOR_DIR}/{spec.file_name}"
    if spec.raw is not None:
        return {path: render("etc/apparmor.d/raw-profile.j2", spec=spec)}
    flags = "complain" if spec.mode == "complain" else ""
    return {path: render("etc/apparmor.d/profile.j2", spec=spec, flags=flags, rules=apparmor_rules(spec))}


# ---- seccomp ------------------------------------------------------------------------------

def _errno_number(name: str) -> int:
    import errno

    return int(getattr(errno, name))


def seccomp_oci(spec: SeccompProfileSpec) -> dict[str, Any]:
    """The profile in the OCI runtime-spec / Docker / kubelet JSON format."""
    syscalls: list[dict[str, Any]] = []
    for rule in spec.rules:
        entry: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
        if rule.action == "SCMP_ACT_ERRNO":
            entry["errnoRet"] = _errno_number(rule.errno or spec.default_errno)
        syscalls.append(entry)
    profile: dict[str, Any] = {"defaultAction": spec.default_action}
    if spec.default_action == "SCMP_ACT_ERRNO":
        profile["defaultErrnoRet"] = _errno_number(spec.default_errno)
    profile["architectures"] = [spec.oci_arch]
    profile["syscalls"] = syscalls
    return profile


def render_seccomp(spec: SeccompProfileSpec) -> dict[str, str]:
    text = render("seccomp/profile.json.j2", profile=seccomp_oci(spec))
    files = {f"{d}/{spec.name}.json": text for d in SECCOMP_DIRS}
    systemd = spec.systemd_filter
    for svc in spec.services:
        assert systemd is not None  # the spec refuses services it cannot express
        files[f"{SYSTEMD_DIR}/{svc}.d/ringzero-seccomp-{spec.name}.conf"] = render(
            "etc/systemd/system/seccomp-dropin.conf.j2", spec=spec, service=svc,
            filter=systemd[0], errno=systemd[1],
        )
    return files


# ---- eBPF agents --------------------------------------------------------------------------

def ebpf_exec(spec: EbpfAgentSpec) -> tuple[list[str], str]:
    """(ExecStartPre= lines, ExecStart=) for the agent's service."""
    if spec.output == "journal":
        return [], f"/usr/bin/bpftrace -B line {spec.program_path}"
    directory = spec.output.rsplit("/", 1)[0] or "/"
    return [f"/bin/mkdir -p {directory}"], f"/usr/bin/bpftrace -B line -o {spec.output} {spec.program_path}"


def render_ebpf(spec: EbpfAgentSpec) -> dict[str, str]:
    pre, exec_start = ebpf_exec(spec)
    files = {
        f"{SYSTEMD_DIR}/{spec.unit_name}": render(
            "etc/systemd/system/ebpf-agent.service.j2", spec=spec, pre=pre, exec_start=exec_start
        )
    }
    if spec.program is not None:
        header = f"// Managed by ringzero: EbpfAgent {spec.name}.\n"
        files[spec.program_path] = header + spec.program.rstrip("\n") + "\n"
    return files


# ---- workload services --------------------------------------------------------------------

def render_service(spec: ServiceSpec) -> dict[str, str]:
    return {
        f"{SYSTEMD_DIR}/{spec.name}": render(
            "etc/systemd/system/workload.service.j2", spec=spec,
            description=spec.description or f"ringzero service {spec.name}",
        )
    }


# ---- hypervisor host preparation -------------------------------------------------------------

KVM_PACKAGES = ("qemu-system-x86", "libvirt-daemon-system", "libvirt-clients")
KVM_MODPROBE = "/etc/modprobe.d/ringzero-kvm.conf"
XEN_PACKAGES = ("xen-system-amd64",)
XEN_GRUB = "/etc/default/grub.d/ringzero-xen.cfg"
XEN_GRUB_DEFAULT = "Debian GNU/Linux, with Xen hypervisor"


def xen_cmdline(host: HostSpec) -> str:
    """dom0 memory fixed at the declared size (no ballooning), as Xen's docs recommend."""
    return f"dom0_mem={host.dom0_memory_mib}M,max:{host.dom0_memory_mib}M"


def render_host_prep(kind: str, node: str, host: HostSpec) -> dict[str, str]:
    """The configuration files host preparation of `kind` writes on `node` (settings from `host`)."""
    if kind == "kvm":
        return {KVM_MODPROBE: render("etc/modprobe.d/ringzero-kvm.conf.j2", node=node, nested=int(host.nested_virt))}
    return {XEN_GRUB: render(
        "etc/default/grub.d/ringzero-xen.cfg.j2", node=node, grub_default=XEN_GRUB_DEFAULT,
        xen_cmdline=xen_cmdline(host),
    )}


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
