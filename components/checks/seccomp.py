"""Checks for SeccompProfile: OCI files in place; confined services filtered by the kernel."""

from __future__ import annotations

import errno
import json
import shlex

from ..render import SECCOMP_DIRS, seccomp_oci
from ..spec import SeccompProfileSpec
from ..spec import _libseccomp as libseccomp
from .base import Check
from .probe import Probe

# Calls syscall NR with zero arguments and prints the errno (0 on success). With zero
# arguments a filtered call fails with the filter's errno before the kernel runs it, and an
# unfiltered one fails with its own (mkdir(NULL) gives EFAULT): nothing is changed either way.
SYSCALL_PROBE = (
    "import ctypes,sys;l=ctypes.CDLL(None,use_errno=True);"
    "r=l.syscall(int(sys.argv[1]),0,0,0,0,0,0);print(ctypes.get_errno() if r==-1 else 0)"
)


def seccomp_mode(status: str | None) -> int | None:
    """The `Seccomp:` field of /proc/<pid>/status (0 off, 1 strict, 2 filter)."""
    for line in (status or "").splitlines():
        if line.startswith("Seccomp:"):
            return int(line.split()[1])
    return None


def _oci_file(node: str, spec: SeccompProfileSpec, directory: str) -> Check:
    path = f"{directory}/{spec.name}.json"
    want = seccomp_oci(spec)

    def verify(p: Probe) -> None:
        text = p.file(path)
        if text is None:
            raise AssertionError(f"{path} is missing")
        try:
            have = json.loads(text)
        except ValueError as e:
            raise AssertionError(f"{path} is not JSON: {e}") from None
        if have != want:
            raise AssertionError(f"{path} differs from the declared profile: {json.dumps(have, sort_keys=True)}")

    return Check(node, f"seccomp:{spec.name}", f"file:{path}", verify, (f"file:{path}",), f"{path} holds the profile")


def _filter_mode(node: str, spec: SeccompProfileSpec, service: str) -> Check:
    def verify(p: Probe) -> None:
        mode = seccomp_mode(p.value(f"proc:{service}:status"))
        if mode is None:
            raise AssertionError(f"{service} has no running main process to look at")
        if mode != 2:
            raise AssertionError(f"{service}'s main process shows Seccomp: {mode}, expected 2 (filter)")

    return Check(node, f"seccomp:{spec.name}", f"{service}:Seccomp", verify, (f"proc:{service}:status",),
                 f"{service} runs under a seccomp filter")


def _denied_syscall(node: str, spec: SeccompProfileSpec, service: str) -> Check | None:
    rule = next((r for r in spec.rules if r.action == "SCMP_ACT_ERRNO"), None)
    if rule is None or spec.default_action != "SCMP_ACT_ALLOW":
        return None  # an allow list: the probe's own interpreter could not start under it
    name = rule.names[0]
    nr = libseccomp.syscall_number(spec.architecture, name)
    expected = getattr(errno, rule.errno or spec.default_errno)

    def verify(p: Probe) -> None:
        unit = p.unit(service)
        flt, err = unit.get("SystemCallFilter", ""), unit.get("SystemCallErrorNumber", "")
        if not flt:
            raise AssertionError(f"{service} has no SystemCallFilter= in effect")
        # The unit's filter as systemd has it loaded, on a transient probe process.
        props = ["-p", f"SystemCallFilter={flt}", "-p", f"SystemCallErrorNumber={err}",
                 "-p", "SystemCallArchitectures=native"]
        probe = ["python3", "-c", SYSCALL_PROBE, str(nr)]
        confined = p.run("systemd-run --quiet --wait --pipe --collect " + shlex.join(props + probe))
        free = p.run(shlex.join(probe))
        if confined.rc != 0 or free.rc != 0:
            raise AssertionError(f"the {name} probe did not run: {confined.stderr.strip()} {free.stderr.strip()}")
        got, baseline = int(confined.stdout.strip() or -1), int(free.stdout.strip() or -1)
        if got != expected:
            raise AssertionError(f"{name}() under {service}'s filter gave errno {got}, expected {expected}")
        if baseline == expected:
            raise AssertionError(f"{name}() gives errno {expected} even without the filter: the probe proves nothing")

    return Check(node, f"seccomp:{spec.name}", f"{service}:{name}", verify, (f"unit:{service}",),
                 f"{name}() fails with {rule.errno or spec.default_errno} under {service}'s filter")


def checks(node: str, spec: SeccompProfileSpec) -> list[Check]:
    out = [_oci_file(node, spec, d) for d in SECCOMP_DIRS]
    for svc in spec.services:
        out.append(_filter_mode(node, spec, svc))
        denied = _denied_syscall(node, spec, svc)
        if denied is not None:
            out.append(denied)
    return out

