"""What a declared seccomp profile looks like on the node: the OCI document in each directory
runtimes and the kubelet read (render lays it out; the checks compare it back), each confined
service's main process under a filter (`Seccomp: 2`), and the errno each denied syscall fails
with under the service's filter (the checks' probe)."""

from __future__ import annotations

import errno
from typing import Any

from .spec import SeccompProfileSpec

SECCOMP_DIRS = ("/etc/ringzero/seccomp", "/var/lib/kubelet/seccomp/profiles/ringzero")
FILTER_MODE = 2  # /proc/<pid>/status `Seccomp:` of a process under a filter (SECCOMP_MODE_FILTER)


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


def oci_paths(spec: SeccompProfileSpec) -> list[str]:
    """Where the OCI document is written, one file per directory."""
    return [f"{d}/{spec.name}.json" for d in SECCOMP_DIRS]


def expected_errnos(spec: SeccompProfileSpec) -> dict[str, int]:
    """Syscall -> the errno number it fails with under the filter (rules' own, else the default)."""
    return {n: _errno_number(r.errno or spec.default_errno) for r in spec.rules for n in r.names}
