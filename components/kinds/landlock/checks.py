"""Checks for LandlockSpec: ruleset and launcher in place, each service started through the
launcher with that ruleset (its unit, its running process), the node's ABI against the mode,
and the effect: under the ruleset a write outside its writable paths fails with EACCES (and
succeeds without it), a write inside succeeds, a bind to an undeclared port fails (ABI >= 4).
"""

from __future__ import annotations

import errno
import hashlib
import json
import shlex
from typing import Any

from ...checks.base import Check, NotApplicable
from ...checks.probe import Probe
from ...facts import exec_start_argv, landlock_marker, proc_cmdline, proc_environ, proc_status
from .expect import LAUNCHER, MARKER, bind_target, enforced, ruleset_path, write_targets
from .render import launcher_text, ruleset_text
from .spec import LandlockSpec

# The node's Landlock ABI, read by the check itself (not by the launcher it checks): 0 = none.
ABI_PROBE = ("import ctypes;l=ctypes.CDLL(None,use_errno=True);l.syscall.restype=ctypes.c_long;"
             "v=l.syscall(ctypes.c_long(444),None,ctypes.c_size_t(0),ctypes.c_uint32(1));print(max(v,0))")
ABI_KEY = "shell:" + shlex.join(["python3", "-I", "-S", "-c", ABI_PROBE])
PROBE_TIMEOUT_S = 30


class ProbeRefused(Exception):
    """The effect probe cannot decide (did not run, or proves nothing): an `error`."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _node_abi(p: Probe) -> int:
    raw = (p.value(ABI_KEY) or "").strip()
    if not raw.isdigit():
        raise ProbeRefused(f"the node's Landlock ABI could not be read: {raw or 'no output'}")
    return int(raw)


def _file(node: str, spec: LandlockSpec, path: str, want: str, what: str) -> Check:
    def verify(p: Probe) -> None:
        have = p.file(path)
        if have is None:
            raise AssertionError(f"{path} is missing")
        if have != want:
            raise AssertionError(f"{path} differs from {what} (sha256 {_sha256(have)[:16]}…, "
                                 f"expected {_sha256(want)[:16]}…)")

    return Check(node, f"landlock:{spec.name}", f"file:{path}", verify, (f"file:{path}",), f"{path} holds {what}")


def _exec_start(node: str, spec: LandlockSpec, service: str) -> Check:
    prefix = [LAUNCHER, ruleset_path(spec), "--"]

    def verify(p: Probe) -> None:
        cmds = exec_start_argv(p.unit(service).get("ExecStart"))
        if not cmds:
            raise AssertionError(f"{service} has no ExecStart (not loaded?)")
        bad = [" ".join(c) for c in cmds if c[:3] != prefix]
        if bad:
            raise AssertionError(f"{service} runs {bad[0]!r}, not through {' '.join(prefix)}")

    return Check(node, f"landlock:{spec.name}", f"{service}:ExecStart", verify, (f"unit:{service}",),
                 f"{service} starts through the Landlock launcher with {ruleset_path(spec)}")


def _process(node: str, spec: LandlockSpec, service: str) -> Check:
    digest = _sha256(ruleset_text(spec))

    def verify(p: Probe) -> None:
        env = proc_environ(p.value(f"proc:{service}:environ"))
        if env is None:
            raise AssertionError(f"{service} has no running main process to look at")
        mark = landlock_marker(env.get(MARKER))
        if mark is None:
            raise AssertionError(f"{service}'s main process was not started by the Landlock launcher (no {MARKER})")
        if (mark.name, mark.sha256) != (spec.name, digest):
            raise AssertionError(f"{service}'s main process runs under ruleset {mark.name!r} sha256 "
                                 f"{mark.sha256[:16]}…, declared {spec.name!r} sha256 {digest[:16]}… "
                                 "(restart it to apply the ruleset)")
        status = proc_status(p.value(f"proc:{service}:status"))
        if status.no_new_privs is not True:
            raise AssertionError(f"{service}'s main process has NoNewPrivs {status.no_new_privs}, the launcher sets 1")
        # systemd 252 prints argv[] words joined by spaces, unquoted: compare in that form
        cmds = exec_start_argv(p.unit(service).get("ExecStart"))
        want = " ".join(cmds[0][3:]) if cmds and cmds[0][2:3] == ["--"] else None
        have = proc_cmdline(p.value(f"proc:{service}:cmdline"))
        if want is not None and " ".join(have or []) != want:
            raise AssertionError(f"{service}'s main process runs {have}, its unit's command is {want!r}")

    return Check(node, f"landlock:{spec.name}", f"{service}:process", verify,
                 (f"proc:{service}:environ", f"proc:{service}:status", f"proc:{service}:cmdline", f"unit:{service}"),
                 f"{service} runs under ruleset {spec.name!r} (sha256 {digest[:12]}…)")


def _abi(node: str, spec: LandlockSpec) -> Check:
    def verify(p: Probe) -> str | None:
        e = enforced(spec, _node_abi(p))
        if not e.dropped:
            return None
        if spec.mode == "strict":
            raise AssertionError(f"{e.describe(spec)}: strict refuses to run its services here")
        return f"best_effort: {e.describe(spec)}; those rights are dropped"

    return Check(node, f"landlock:{spec.name}", "abi", verify, (ABI_KEY,),
                 f"the node's Landlock ABI enforces ruleset {spec.name!r} ({spec.mode})")


def _errname(n: int) -> str:
    return errno.errorcode.get(n, str(n)) if n else "success"


def _run_probe(p: Probe, spec: LandlockSpec, args: list[str]) -> dict[str, Any]:
    res = p.run(shlex.join([LAUNCHER, "--probe", ruleset_path(spec), *args]), timeout=PROBE_TIMEOUT_S)
    if res.rc == 78:  # the launcher refused a strict ruleset this kernel cannot enforce
        raise AssertionError(" ".join(res.stderr.split()) or "the launcher refused the strict ruleset")
    try:
        doc: dict[str, Any] = json.loads(res.stdout)
    except ValueError:
        raise ProbeRefused(f"the launcher's probe did not run (rc={res.rc}): "
                           f"{' '.join((res.stderr or res.stdout).split())[:300]}") from None
    return doc


def _write_effect(node: str, spec: LandlockSpec) -> Check | None:
    denied, allowed = write_targets(spec)
    if denied is None and allowed is None:
        return None
    args = [a for kind, d in (("denied", denied), ("allowed", allowed)) if d for a in (f"--write-{kind}", d)]

    def verify(p: Probe) -> None:
        # The node's ruleset file is the one probed (the file check proves it is the declared one).
        for r in _run_probe(p, spec, args)["results"]:
            where, without, under = r["target"], r["without"], r["under"]
            if without != 0:
                raise ProbeRefused(f"a write in {where} fails even without the ruleset ({_errname(without)}): "
                                   "the probe proves nothing")
            if r["expect"] == "denied" and under != errno.EACCES:
                raise AssertionError(f"under the ruleset a write in {where} gave {_errname(under)}, expected EACCES")
            if r["expect"] == "allowed" and under != 0:
                raise AssertionError(f"under the ruleset a write in {where} (read_write) gave {_errname(under)}")

    parts = ([f"a write in {denied} fails with EACCES"] if denied else []) + (
        [f"one in {allowed} succeeds"] if allowed else [])
    return Check(node, f"landlock:{spec.name}", "effect:write", verify, (), f"under {spec.name!r}: {', '.join(parts)}")


def _bind_effect(node: str, spec: LandlockSpec) -> Check | None:
    port = bind_target(spec)
    if port is None:
        return None

    def verify(p: Probe) -> None:
        abi = _node_abi(p)
        e = enforced(spec, abi)
        if "bind_tcp" in e.dropped:
            if spec.mode == "best_effort":
                raise NotApplicable(f"not enforced here: {e.describe(spec)} (best_effort drops bind_tcp)")
            raise AssertionError(f"{e.describe(spec)}: binds are not restricted")
        (r,) = _run_probe(p, spec, ["--bind-denied", str(port)])["results"]
        if r["without"] != 0:
            raise ProbeRefused(f"binding 127.0.0.1:{port} fails even without the ruleset ({_errname(r['without'])})")
        if r["under"] != errno.EACCES:
            raise AssertionError(f"under the ruleset binding 127.0.0.1:{port} gave {_errname(r['under'])}, "
                                 "expected EACCES")

    return Check(node, f"landlock:{spec.name}", "effect:bind", verify, (ABI_KEY,),
                 f"under {spec.name!r}: binding an undeclared TCP port (127.0.0.1:{port}) fails with EACCES")


def checks(node: str, spec: LandlockSpec) -> list[Check]:
    out = [_file(node, spec, ruleset_path(spec), ruleset_text(spec), f"the ruleset {spec.name!r}"),
           _file(node, spec, LAUNCHER, launcher_text(), "ringzero's Landlock launcher"),
           _abi(node, spec)]
    for svc in spec.services:
        out += [_exec_start(node, spec, svc), _process(node, spec, svc)]
    out += [c for c in (_write_effect(node, spec), _bind_effect(node, spec)) if c is not None]
    return out
