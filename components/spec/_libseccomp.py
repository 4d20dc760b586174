"""libseccomp's own syscall table, through ctypes: the names the kernel filter will accept."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# SCMP_ARCH_* tokens are the AUDIT_ARCH_* values (linux/audit.h).
ARCH_TOKENS = {
    "x86_64": 0xC000003E,
    "x86": 0x40000003,
    "aarch64": 0xC00000B7,
    "arm": 0x40000028,
    "ppc64le": 0xC0000015,
    "s390x": 0x80000016,
    "riscv64": 0xC00000F3,
}
OCI_ARCH = {
    "x86_64": "SCMP_ARCH_X86_64",
    "x86": "SCMP_ARCH_X86",
    "aarch64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
}


class LibseccompMissing(RuntimeError):
    pass


@functools.cache
def _lib() -> ctypes.CDLL:
    # the soname first: the dynamic loader finds it at once, where find_library runs
    # `ldconfig -p` (a process, on every program run)
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        lib = None
    try:
        lib = lib or ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
    except OSError as e:  # pragma: no cover - depends on the machine
        raise LibseccompMissing(
            "libseccomp is not installed (Debian: apt-get install libseccomp2); "
            "ringzero needs it to check syscall names"
        ) from e
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
    return lib


@functools.cache
def syscall_number(arch: str, name: str) -> int | None:
    """The syscall's number on `arch`, or None when libseccomp does not know it there."""
    nr = _lib().seccomp_syscall_resolve_name_arch(ARCH_TOKENS[arch], name.encode())
    # -1 is an unknown name; other negative numbers are libseccomp's pseudo-syscalls for
    # names that exist elsewhere but not as a syscall on this architecture (open on aarch64).
    return None if nr < 0 else int(nr)
