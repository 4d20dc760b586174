"""Checks for hypervisor host preparation (kvm or xen) as a node's loaders and tools see it."""

from __future__ import annotations

from ..facts import module_param, module_param_path
from ..render import KVM_PACKAGES, XEN_GRUB_DEFAULT, XEN_PACKAGES, xen_cmdline
from ..spec import HostSpec
from .base import Check, expect_equal
from .probe import Probe

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
        status = p.value(f"dpkg:{package}")
        if status is None or not status.startswith("installed"):
            raise AssertionError(f"package {package} is not installed ({status or 'unknown to dpkg'})")

    return Check(node, f"host:{kind}", f"package:{package}", verify, (f"dpkg:{package}",), f"{package} is installed")


def kvm_checks(node: str, host: HostSpec) -> list[Check]:
    nested = str(int(host.nested_virt))
    want = "\n".join(f"options {m} nested={nested}" for m in ("kvm_amd", "kvm_intel"))

    def options(p: Probe) -> None:
        expect_equal("modprobe's configuration for kvm_intel/kvm_amd", want, p.value(MODPROBE_OPTIONS))
        for module in ("kvm_intel", "kvm_amd"):
            live = module_param(p.file(module_param_path(module, "nested")))
            if live is not None and live != nested:
                raise AssertionError(f"{module} is loaded with nested={live}, declared {nested}")

    def libvirt(p: Probe) -> None:
        expect_equal("virsh uri", "qemu:///system", p.value(LIBVIRT_URI))

    reads = (MODPROBE_OPTIONS, *(f"file:{module_param_path(m, 'nested')}" for m in ("kvm_intel", "kvm_amd")))
    return [
        *(_package(node, "kvm", pkg) for pkg in KVM_PACKAGES),
        Check(node, "host:kvm", "nested-virt", options, reads, f"KVM modules configured with nested={nested}"),
        Check(node, "host:kvm", "libvirtd", libvirt, (LIBVIRT_URI,), "libvirtd answers on qemu:///system"),
    ]


def xen_checks(node: str, host: HostSpec) -> list[Check]:
    def hypervisor(p: Probe) -> None:
        if not (p.value(XEN_BINARY) or "").strip():
            raise AssertionError("no Xen hypervisor image (/boot/xen-*.gz) on the node")

    def grub(p: Probe) -> None:
        lines = ["", "", *(p.value(GRUB_VIEW) or "").splitlines()]
        expect_equal("GRUB_DEFAULT", XEN_GRUB_DEFAULT, lines[-2])
        expect_equal("GRUB_CMDLINE_XEN_DEFAULT (dom0 memory)", xen_cmdline(host), lines[-1])

    return [
        *(_package(node, "xen", pkg) for pkg in XEN_PACKAGES),
        Check(node, "host:xen", "hypervisor", hypervisor, (XEN_BINARY,), "the Xen hypervisor is installed"),
        Check(node, "host:xen", "grub", grub, (GRUB_VIEW,), "GRUB boots Xen by default with the declared dom0 memory"),
    ]
