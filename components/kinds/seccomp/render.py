"""A seccomp profile's files: OCI JSON for runtimes and kubelet, a SystemCallFilter= drop-in per service."""

from __future__ import annotations

from ...render import SYSTEMD_DIR, render
from .expect import oci_paths, seccomp_oci
from .spec import SeccompProfileSpec


def render_seccomp(spec: SeccompProfileSpec) -> dict[str, str]:
    text = render("seccomp/profile.json.j2", profile=seccomp_oci(spec))
    files = dict.fromkeys(oci_paths(spec), text)
    systemd = spec.systemd_filter
    for svc in spec.services:
        assert systemd is not None  # the spec refuses services it cannot express
        files[f"{SYSTEMD_DIR}/{svc}.d/ringzero-seccomp-{spec.name}.conf"] = render(
            "etc/systemd/system/seccomp-dropin.conf.j2", spec=spec, service=svc,
            filter=systemd[0], errno=systemd[1],
        )
    return files
