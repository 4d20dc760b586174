"""Checks for hypervisor host preparation (kvm or xen) as a node's loaders and tools see it."""

from __future__ import annotations

from ...checks.base import Check, expect_equal
from ...checks.probe import Probe
from ...facts import dpkg_packages, module_param, module_param_path
from .expect import PACKAGES, grub, module_params
from .spec import HostPrepSpec

MODPROBE_OPTIONS = "shell:modprobe -c | grep -E '^options kvm_(intel|amd) ' | sort"
LIBVIRT_URI = "shell:virsh -q -c qemu:///system uri"
# GRUB's own view: /etc/default/grub then grub.d/*.cfg, sourced in order as grub-mkconfig
# does (with its helper functions stubbed), the result on the last two lines.
GRUB_VIEW = (
    "shell:grub_warn() { :; }; gettext() { printf '%s' \"$1\"; }; "
    "for f in /etc/default/grub /etc/default/grub.d/*.cfg; do [ -r \"$f\" ] && . \"$f\"; done 2>/dev/null; "
    "printf '%s\\n%s\\n' \"$GRUB_DEFAULT\" \"$GRUB_CMDLINE_XEN_DEFAULT\""
)
XEN_BINARY = "shell:ls /boot/xen-*.gz 2>/dev/null | head -n 1"


def _package(node: str, kind: str, package: str) -> Check:
    def verify(p: Probe) -> None:
        known = dpkg_packages(p.value(f"dpkg:{package}")).get(package)
        if known is None or known.status != "installed":
            shown = f"{known.status} {known.version}".strip() if known else "unknown to dpkg"
            raise AssertionError(f"package {package} is not installed ({shown})")

    return Check(node, f"host:{kind}", f"package:{package}", verify, (f"dpkg:{package}",), f"{package} is installed")


def kvm_checks(spec: HostPrepSpec) -> list[Check]:
    params = module_params(spec)
    want = "\n".join(sorted(f"options {m} {k}={v}" for m, k, v in params))  # as `modprobe -c | sort` lists them
    settings = ", ".join(sorted({f"{k}={v}" for _m, k, v in params}))

    def options(p: Probe) -> None:
        expect_equal("modprobe's configuration for kvm_intel/kvm_amd", want, p.value(MODPROBE_OPTIONS))
        for module, param, value in params:
            live = module_param(p.file(module_param_path(module, param)))
            if live is not None and live != value:
                raise AssertionError(f"{module} is loaded with {param}={live}, declared {value}")

    def libvirt(p: Probe) -> None:
        expect_equal("virsh uri", "qemu:///system", p.value(LIBVIRT_URI))

    reads = (MODPROBE_OPTIONS, *(f"file:{module_param_path(m, k)}" for m, k, _v in params))
    return [
        *(_package(spec.node, "kvm", pkg) for pkg in PACKAGES["kvm"]),
        Check(spec.node, "host:kvm", "nested-virt", options, reads, f"KVM modules configured with {settings}"),
        Check(spec.node, "host:kvm", "libvirtd", libvirt, (LIBVIRT_URI,), "libvirtd answers on qemu:///system"),
    ]


def xen_checks(spec: HostPrepSpec) -> list[Check]:
    values = grub(spec)

    def hypervisor(p: Probe) -> None:
        if not (p.value(XEN_BINARY) or "").strip():
            raise AssertionError("no Xen hypervisor image (/boot/xen-*.gz) on the node")

    def grub_view(p: Probe) -> None:
        # GRUB_VIEW prints the variables in the table's order, last lines last.
        lines = [*([""] * len(values)), *(p.value(GRUB_VIEW) or "").splitlines()][-len(values):]
        for (var, want), line in zip(values.items(), lines, strict=True):
            what = "GRUB_CMDLINE_XEN_DEFAULT (dom0 memory)" if var == "GRUB_CMDLINE_XEN_DEFAULT" else var
            expect_equal(what, want, line)

    return [
        *(_package(spec.node, "xen", pkg) for pkg in PACKAGES["xen"]),
        Check(spec.node, "host:xen", "hypervisor", hypervisor, (XEN_BINARY,), "the Xen hypervisor is installed"),
        Check(spec.node, "host:xen", "grub", grub_view, (GRUB_VIEW,),
              "GRUB boots Xen by default with the declared dom0 memory"),
    ]


def checks(node: str, spec: HostPrepSpec) -> list[Check]:
    """What proves the preparation of `spec.kind` on `node` (`spec.node`: the same node)."""
    return kvm_checks(spec) if spec.kind == "kvm" else xen_checks(spec)
