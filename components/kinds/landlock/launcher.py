#!/usr/bin/python3 -IS
"""ringzero landlock-exec: run a command under a Landlock ruleset, or do not run it.

Shipped to nodes as /usr/local/libexec/ringzero/landlock-exec (standard library only, no
site packages: `-IS`). The ruleset is a JSON file ringzero renders
(/etc/ringzero/landlock/<name>.json); it carries every right it handles with its bit and the
Landlock ABI that brought it, so this file holds no table of its own. Usage::

    landlock-exec RULESET -- COMMAND [ARG...]   apply RULESET, then execve COMMAND
    landlock-exec --abi                         print the kernel's Landlock ABI (0: none)
    landlock-exec --explain RULESET             print what this kernel enforces of RULESET, as JSON
    landlock-exec --probe RULESET [--write-denied DIR] [--write-allowed DIR] [--bind-denied PORT]
        try each write (an O_TMPFILE: nothing appears on disk) and bind (127.0.0.1, never
        listening) without the ruleset, then under it; print errnos as JSON

`--max-abi N` (before the mode) is a test aid, never written by ringzero into a unit: it
caps the ABI as if the kernel were older (the unit tests prove best_effort's downgrading and
strict's refusal on a kernel newer than the one simulated). It can only lower the ABI
(min(kernel, N)), so a strict ruleset is refused more often, never less; a best_effort one
drops more and says so in its marker (abi=N). A unit whose ExecStart carries it fails the
landlock ExecStart check (the launcher's words must be exactly LAUNCHER RULESET --).
A `strict` ruleset the kernel cannot enforce fully is refused naming the missing rights (exit
78), and the command is not run. A `best_effort` ruleset is applied as far as the ABI goes;
what was dropped is said on stderr and in the exec'ed process's RINGZERO_LANDLOCK variable
("<name> sha256=<hash of the ruleset file> abi=<n> dropped=<rights or ->"). Any other failure
(unreadable ruleset, a rule the kernel refuses) exits 71 without running the command.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import socket
import sys
from typing import Any

# The generic syscall table numbers every architecture ringzero targets shares (asm-generic).
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2
PR_SET_NO_NEW_PRIVS = 38
EX_CONFIG, EX_OSERR, EX_USAGE = 78, 71, 64
MARKER = "RINGZERO_LANDLOCK"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


class Refused(Exception):
    """The ruleset cannot be applied as declared: the command must not run."""

    def __init__(self, message: str, code: int = EX_OSERR) -> None:
        super().__init__(message)
        self.code = code


def _syscall(nr: int, *args: Any) -> int:
    ctypes.set_errno(0)
    return int(_libc.syscall(ctypes.c_long(nr), *args))


def kernel_abi() -> int:
    """The running kernel's Landlock ABI; 0 when it has none or Landlock is off at boot."""
    v = _syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return v if v > 0 else 0


def load(path: str) -> tuple[dict[str, Any], str]:
    """The ruleset and the sha256 of its bytes (read once: the hash is of what is applied)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        doc = json.loads(data)
    except (OSError, ValueError) as e:
        raise Refused(f"cannot read the ruleset {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != 1 or doc.get("mode") not in ("strict", "best_effort"):
        raise Refused(f"{path} is not a ringzero Landlock ruleset (format 1)")
    return doc, hashlib.sha256(data).hexdigest()


def explain(doc: dict[str, Any], abi: int) -> dict[str, Any]:
    """What ABI `abi` enforces of the ruleset: the rights it handles, and those it drops."""
    rights: dict[str, dict[str, Any]] = doc["rights"]
    enforced = [r for r, d in rights.items() if d["abi"] <= abi]
    dropped = [r for r, d in rights.items() if d["abi"] > abi]
    return {"name": doc["name"], "mode": doc["mode"], "abi": abi, "enforced": enforced, "dropped": dropped,
            "dropped_needs": {r: rights[r]["abi"] for r in dropped}}


def _mask(doc: dict[str, Any], names: list[str], scope: str, enforced: set[str], file_only: bool = False) -> int:
    rights: dict[str, dict[str, Any]] = doc["rights"]
    bits = 0
    for n in names:
        d = rights.get(n)
        if d is not None and d["scope"] == scope and n in enforced and (d["file"] or not file_only):
            bits |= 1 << int(d["bit"])
    return bits


def restrict(doc: dict[str, Any], abi: int) -> dict[str, Any]:
    """Apply the ruleset to this process (no_new_privs first). Strict and not enforceable, or
    any rule refused: Refused, and nothing is restricted half-way unnoticed."""
    ex = explain(doc, abi)
    if ex["dropped"] and doc["mode"] == "strict":
        missing = ", ".join(f"{r} (ABI {n})" for r, n in ex["dropped_needs"].items())
        raise Refused(f"ruleset {doc['name']!r} is strict and this kernel's Landlock ABI is {abi}: it cannot "
                      f"enforce {missing}", EX_CONFIG)
    enforced = set(ex["enforced"])
    if not enforced:
        return ex  # best_effort on a kernel without Landlock: nothing to apply, all of it reported
    all_rights = list(doc["rights"])
    attr = RulesetAttr(_mask(doc, all_rights, "fs", enforced), _mask(doc, all_rights, "net", enforced),
                       _mask(doc, all_rights, "scope", enforced))
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # the struct as that ABI knows it
    fd = _syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        raise Refused(f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}")
    try:
        for rule in doc["paths"]:
            try:
                pfd = os.open(rule["path"], os.O_PATH | os.O_CLOEXEC)
            except OSError as e:  # a path that is not there grants nothing: less access, not more
                print(f"landlock-exec: {rule['path']}: {e.strerror}; not granted", file=sys.stderr)
                continue
            try:
                is_dir = os.path.isdir(f"/proc/self/fd/{pfd}")
                bits = _mask(doc, rule["access"], "fs", enforced, file_only=not is_dir)
                if bits:
                    pb = PathBeneathAttr(bits, pfd)
                    if _syscall(SYS_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(pb),
                                ctypes.c_uint32(0)) != 0:
                        raise Refused(f"landlock_add_rule({rule['path']}) failed: {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(pfd)
        for rule in doc["ports"]:
            bits = _mask(doc, rule["access"], "net", enforced)
            if bits:
                np_ = NetPortAttr(bits, int(rule["port"]))
                if _syscall(SYS_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(RULE_NET_PORT), ctypes.byref(np_),
                            ctypes.c_uint32(0)) != 0:
                    raise Refused(f"landlock_add_rule(port {rule['port']}) failed: {os.strerror(ctypes.get_errno())}")
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise Refused(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
        if _syscall(SYS_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
            raise Refused(f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
    return ex


def marker(ex: dict[str, Any], digest: str) -> str:
    return f"{ex['name']} sha256={digest} abi={ex['abi']} dropped={','.join(ex['dropped']) or '-'}"


def _try_write(directory: str) -> int:
    """errno of creating an unnamed file in `directory` (0: allowed); nothing is left on disk."""
    try:
        os.close(os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    except OSError as e:
        return e.errno or -1
    return 0


def _try_bind(port: int) -> int:
    """errno of binding 127.0.0.1:`port` (0: allowed); the socket never listens."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError as e:
        return e.errno or -1
    finally:
        s.close()
    return 0


def probe(doc: dict[str, Any], digest: str, abi: int, writes: list[tuple[str, str]],
          binds: list[int]) -> dict[str, Any]:
    """Each write and bind without the ruleset, then under it (this process restricts itself)."""
    tries = [("write", kind, d) for kind, d in writes] + [("bind", "denied", str(p)) for p in binds]

    def attempt(op: str, target: str) -> int:
        return _try_write(target) if op == "write" else _try_bind(int(target))

    before = [attempt(op, target) for op, _, target in tries]
    ex = restrict(doc, abi)
    results = [{"op": op, "expect": kind, "target": target, "without": b, "under": attempt(op, target)}
               for (op, kind, target), b in zip(tries, before, strict=True)]
    return {**ex, "sha256": digest, "results": results}


def main(argv: list[str]) -> int:
    args = argv[1:]
    cap: int | None = None
    if args[:1] == ["--max-abi"] and len(args) > 1 and args[1].isdigit():
        cap, args = int(args[1]), args[2:]
    abi = kernel_abi() if cap is None else min(kernel_abi(), cap)
    try:
        if args == ["--abi"]:
            print(abi)
            return 0
        if len(args) == 2 and args[0] == "--explain":
            doc, digest = load(args[1])
            print(json.dumps({**explain(doc, abi), "sha256": digest}, sort_keys=True))
            return 0
        if len(args) >= 2 and args[0] == "--probe":
            doc, digest = load(args[1])
            writes: list[tuple[str, str]] = []
            binds: list[int] = []
            rest = args[2:]
            while len(rest) >= 2 and rest[0] in ("--write-denied", "--write-allowed", "--bind-denied"):
                if rest[0] == "--bind-denied":
                    binds.append(int(rest[1]))
                else:
                    writes.append((rest[0].removeprefix("--write-"), rest[1]))
                rest = rest[2:]
            if rest:
                raise Refused(f"unexpected arguments {rest}", EX_USAGE)
            print(json.dumps(probe(doc, digest, abi, writes, binds), sort_keys=True))
            return 0
        if len(args) >= 3 and args[1] == "--" and not args[0].startswith("-"):
            doc, digest = load(args[0])
            ex = restrict(doc, abi)
            if ex["dropped"]:
                print(f"landlock-exec: best_effort ruleset {doc['name']!r} on Landlock ABI {abi}: dropped "
                      f"{', '.join(ex['dropped'])}", file=sys.stderr)
            env = {**os.environ, MARKER: marker(ex, digest)}
            os.execve(args[2], args[2:], env)  # does not return; a failure raises OSError
        raise Refused("usage: landlock-exec [--max-abi N] (RULESET -- COMMAND [ARG...] | --abi | "
                      "--explain RULESET | --probe RULESET [--write-denied DIR] [--write-allowed DIR] "
                      "[--bind-denied PORT])", EX_USAGE)
    except Refused as e:
        print(f"landlock-exec: {e}; not running", file=sys.stderr)
        return e.code
    except (OSError, KeyError, TypeError, ValueError) as e:  # a malformed ruleset too: never run unconfined
        print(f"landlock-exec: {type(e).__name__}: {e}; not running", file=sys.stderr)
        return EX_OSERR


if __name__ == "__main__":
    sys.exit(main(sys.argv))
