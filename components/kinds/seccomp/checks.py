"""Checks for SeccompProfile: OCI files in place; confined services filtered by the kernel."""

from __future__ import annotations

import errno
import json
import shlex

from ...checks.base import Check, NotApplicable
from ...checks.probe import CommandResult, Probe
from ...facts import seccomp_mode
from ...spec import _libseccomp as libseccomp
from .expect import FILTER_MODE, expected_errnos, oci_paths, seccomp_oci
from .spec import SeccompProfileSpec

# Calls each syscall number given with every argument -1 and prints its errno (0 on success),
# one line each. -1 is an invalid pointer (EFAULT), file descriptor (EBADF), length, flag set
# or id (EINVAL/ESRCH): the kernel refuses before doing anything, and a filtered call fails
# with the filter's errno before the kernel runs it. `-I -S`: no site, no user paths.
SYSCALL_PROBE = (
    "import ctypes,sys;l=ctypes.CDLL(None,use_errno=True);l.syscall.restype=ctypes.c_long;"
    "a=[ctypes.c_long(-1)]*6\n"
    "for n in sys.argv[1:]:\n"
    " ctypes.set_errno(0);r=l.syscall(ctypes.c_long(int(n)),*a);print(ctypes.get_errno() if r==-1 else 0)"
)
# Syscalls that take effect whatever their arguments (no arguments, or an effect the
# arguments cannot prevent, on the node or on the probe itself): never called by the probe,
# even filtered, since the filter may be missing. They would sync disks, hang (pause), fork,
# end or re-parent the probe, or arm timers. The probe calls the next denied syscall instead.
UNSAFE_SYSCALLS = frozenset({
    "sync", "pause", "fork", "vfork", "clone", "clone3", "setsid", "setpgrp", "vhangup", "exit",
    "exit_group", "munlockall", "sched_yield", "rt_sigreturn", "sigreturn", "restart_syscall",
    "alarm", "umask", "inotify_init",
})
# The few denied syscalls probed per service (rule order): enough for one whose unfiltered
# errno differs from the declared one (sethostname is EPERM unprivileged, filtered or not).
PROBED_SYSCALLS = 4
PROBE_TIMEOUT_S = 30  # a transient unit under TCG starts in a second or two
# The probe's own sandbox, with and without the unit's filter: an unprivileged user without
# capabilities, no network, a read-only system, a private /tmp, and a runtime bound. Only
# directives that do not install a seccomp filter of their own: ProtectClock, ProtectKernel*,
# PrivateDevices, RestrictNamespaces, ProtectHostname, MemoryDenyWriteExecute,
# LockPersonality, RestrictRealtime and SystemCallFilter all do, and would make the baseline
# fail with their errno too (the comparison would then prove nothing).
SANDBOX = ("User=nobody", "CapabilityBoundingSet=", "AmbientCapabilities=", "NoNewPrivileges=yes",
           "PrivateNetwork=yes", "PrivateTmp=yes", "ProtectSystem=strict", "ProtectHome=yes",
           f"RuntimeMaxSec={PROBE_TIMEOUT_S - 5}")
# `uname -m` to libseccomp's architecture names.
NODE_ARCH = {
    "x86_64": "x86_64", "amd64": "x86_64", "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86",
    "aarch64": "aarch64", "arm64": "aarch64", "armv6l": "arm", "armv7l": "arm", "armv8l": "arm",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}


class ProbeRefused(Exception):
    """The probe cannot decide: refused (nothing run), did not run, or proved nothing: an `error`."""


def _oci_file(node: str, spec: SeccompProfileSpec, path: str) -> Check:
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
        if mode != FILTER_MODE:
            raise AssertionError(f"{service}'s main process shows Seccomp: {mode}, expected {FILTER_MODE} (filter)")

    return Check(node, f"seccomp:{spec.name}", f"{service}:Seccomp", verify, (f"proc:{service}:status",),
                 f"{service} runs under a seccomp filter")


def probe_syscalls(spec: SeccompProfileSpec) -> tuple[str, ...]:
    """The denied syscalls the filter probe calls: the first few of the rule set (in order)
    that are not in UNSAFE_SYSCALLS."""
    names = (n for r in spec.rules if r.action == "SCMP_ACT_ERRNO" for n in r.names)
    return tuple(n for n in dict.fromkeys(names) if n not in UNSAFE_SYSCALLS)[:PROBED_SYSCALLS]


def _probe_command(names: tuple[str, ...], arch: str, props: list[str]) -> str:
    nrs = [str(libseccomp.syscall_number(arch, n)) for n in names]
    sandbox = [a for p in SANDBOX + tuple(props) for a in ("-p", p)]
    return shlex.join(["systemd-run", "--quiet", "--wait", "--pipe", "--collect", *sandbox,
                       "python3", "-I", "-S", "-c", SYSCALL_PROBE, *nrs])


def _errnos(what: str, res: CommandResult, count: int) -> list[int]:
    lines = res.stdout.split()
    if res.rc != 0 or len(lines) != count or not all(v.isdigit() for v in lines):
        raise ProbeRefused(f"the {what} did not run (rc={res.rc}): {' '.join((res.stderr or res.stdout).split())}")
    return [int(v) for v in lines]


def _name(e: int) -> str:
    return errno.errorcode.get(e, str(e)) if e else "success"


def _denied_syscall(node: str, spec: SeccompProfileSpec, service: str) -> Check | None:
    """Denied syscalls fail with the declared errno under `service`'s filter, and not without it.

    Both runs are transient units in the same unprivileged sandbox (SANDBOX), the first with
    the unit's SystemCallFilter=, SystemCallErrorNumber= and SystemCallArchitectures= as
    systemd reports them; every argument is invalid, so no call can take effect even where the
    filter is missing. Nothing is run on a node whose architecture is not the profile's: the
    profile's syscall numbers are not that node's.
    """
    if not any(r.action == "SCMP_ACT_ERRNO" for r in spec.rules) or spec.default_action != "SCMP_ACT_ALLOW":
        return None  # an allow list: the probe's own interpreter could not start under it
    names = probe_syscalls(spec)
    denied = [n for r in spec.rules if r.action == "SCMP_ACT_ERRNO" for n in r.names]
    expected = expected_errnos(spec)
    errname = next(r.errno or spec.default_errno for r in spec.rules if r.action == "SCMP_ACT_ERRNO")
    shown = names[0] if names else denied[0]

    def verify(p: Probe) -> None:
        if not names:
            raise ProbeRefused(f"refusing to probe: every denied syscall ({', '.join(denied)}) takes effect "
                               "whatever its arguments")
        unit = p.unit(service)
        flt, err = unit.get("SystemCallFilter", "").strip(), unit.get("SystemCallErrorNumber", "").strip()
        if unit.get("LoadState", "loaded") != "loaded":
            raise AssertionError(f"{service} is not loaded (LoadState={unit['LoadState']}): no filter to probe")
        if flt in ("", "~"):
            raise AssertionError(f"{service} has no SystemCallFilter= in effect")
        if not ((isinstance(getattr(errno, err, None), int) and err.startswith("E"))
                or (err.isdigit() and 0 < int(err) < 4096)):
            # systemd's "no errno" (kill) sentinel, or nothing: denied calls would not fail with one
            raise AssertionError(f"{service} has SystemCallErrorNumber={err or '(none)'}, declared {errname}")
        machine = (p.value("arch:") or "").strip()
        arch = NODE_ARCH.get(machine)
        if arch is None:
            raise ProbeRefused(f"the node's architecture ({machine or 'unreadable'}) is not one ringzero maps "
                               f"to libseccomp's ({', '.join(sorted(set(NODE_ARCH.values())))})")
        if arch != spec.architecture:
            raise NotApplicable(f"not applicable here: the profile is declared for {spec.architecture}, the node "
                                f"is {machine}; its syscall numbers are not this node's")
        props = [f"SystemCallFilter={flt}", f"SystemCallErrorNumber={err}"]
        if unit.get("SystemCallArchitectures"):
            props.append(f"SystemCallArchitectures={unit['SystemCallArchitectures']}")
        calls = ", ".join(f"{n}()" for n in names)
        got = _errnos(f"{calls} probe under {service}'s filter",
                      p.run(_probe_command(names, arch, props), timeout=PROBE_TIMEOUT_S), len(names))
        wrong = [f"{n}() gave {_name(g)}" for n, g in zip(names, got, strict=True) if g != expected[n]]
        if wrong:
            raise AssertionError(f"under {service}'s filter {', '.join(wrong)}, expected {errname}")
        free = _errnos(f"{calls} probe without the filter",
                       p.run(_probe_command(names, arch, []), timeout=PROBE_TIMEOUT_S), len(names))
        if all(f == expected[n] for n, f in zip(names, free, strict=True)):
            raise ProbeRefused(f"{calls} give {errname} even without the filter (as an unprivileged user): "
                               "the probe proves nothing")

    return Check(node, f"seccomp:{spec.name}", f"{service}:{shown}", verify, (f"unit:{service}", "arch:"),
                 f"{', '.join(f'{n}()' for n in names or denied[:1])} fail with {errname} under "
                 f"{service}'s filter")


def checks(node: str, spec: SeccompProfileSpec) -> list[Check]:
    out = [_oci_file(node, spec, path) for path in oci_paths(spec)]
    for svc in spec.services:
        out.append(_filter_mode(node, spec, svc))
        denied = _denied_syscall(node, spec, svc)
        if denied is not None:
            out.append(denied)
    return out

