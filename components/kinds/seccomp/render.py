"""A seccomp profile's files: OCI JSON for runtimes and kubelet, a SystemCallFilter= drop-in per service."""

from __future__ import annotations

import errno
from typing import Any

from ...render import SYSTEMD_DIR, render
from .spec import SeccompProfileSpec

SECCOMP_DIRS = ("/etc/ringzero/seccomp", "/var/lib/kubelet/seccomp/profiles/ringzero")


def _errno_number(name: str) -> int:
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
