"""Host preparation's file: the KVM module options, or the GRUB drop-in that boots Xen."""

from __future__ import annotations

from ...render import render
from .expect import CONFIG_FILE, grub, module_params
from .spec import HostPrepSpec


def render_host_prep(spec: HostPrepSpec) -> dict[str, str]:
    """The configuration file the preparation of `spec.kind` writes on `spec.node`."""
    if spec.kind == "kvm":
        text = render("etc/modprobe.d/ringzero-kvm.conf.j2", node=spec.node, options=module_params(spec))
    else:
        values = grub(spec)
        text = render("etc/default/grub.d/ringzero-xen.cfg.j2", node=spec.node,
                      grub_default=values["GRUB_DEFAULT"], xen_cmdline=values["GRUB_CMDLINE_XEN_DEFAULT"])
    return {CONFIG_FILE[spec.kind]: text}
