"""Checks for AppArmorProfile: loaded in the declared mode; declared denials really deny."""

from __future__ import annotations

import re

from ...checks.base import Check
from ...checks.probe import Probe
from ...facts import APPARMOR_PROFILES as PROFILES
from ...facts import apparmor_profiles
from .spec import AppArmorProfileSpec

_PLAIN_PATH = re.compile(r"^/[A-Za-z0-9._/@+=:-]+$")


def _loaded(node: str, spec: AppArmorProfileSpec) -> Check:
    def verify(p: Probe) -> None:
        text = p.file(PROFILES)
        if text is None:
            raise AssertionError(f"AppArmor is not enabled: {PROFILES} is missing")
        mode = apparmor_profiles(text).get(spec.name)
        if mode is None:
            raise AssertionError(f"profile {spec.name} is not loaded")
        if mode != spec.mode:
            raise AssertionError(f"profile {spec.name} is loaded in {mode} mode, declared {spec.mode}")

    return Check(node, f"apparmor:{spec.name}", "mode", verify, (f"file:{PROFILES}",),
                 f"loaded in {spec.mode} mode")


def _access(node: str, spec: AppArmorProfileSpec, path: str, denied: bool) -> Check:
    """Run `cat path` confined by the profile (aa-exec): it fails with EACCES only if denied.

    It only reads, and what it reads stays on the node (stdout to /dev/null: a denial that
    does not deny must not ship /etc/shadow to the checker); Probe.run bounds it in time."""
    expect_denied = denied and spec.mode == "enforce"

    def verify(p: Probe) -> None:
        res = p.run("aa-exec -p %s -- cat -- %s >/dev/null", spec.name, path)
        refused = res.rc != 0 and "Permission denied" in res.stderr
        if expect_denied and not refused:
            raise AssertionError(
                f"reading {path} under {spec.name} was not denied (rc={res.rc}, {res.stderr.strip()!r})")
        if not expect_denied and refused:
            raise AssertionError(f"reading {path} under {spec.name} ({spec.mode}) was denied: {res.stderr.strip()}")
        if not expect_denied and res.rc != 0:
            raise AssertionError(f"reading {path} under {spec.name} failed: {res.stderr.strip()}")

    verb = "denied" if expect_denied else "allowed"
    return Check(node, f"apparmor:{spec.name}", f"{'deny' if denied else 'allow'}:{path}", verify, (),
                 f"reading {path} is {verb}")


def checks(node: str, spec: AppArmorProfileSpec) -> list[Check]:
    out = [_loaded(node, spec)]
    # Real accesses for plain (glob-free) read rules: a deny rule must refuse in enforce mode
    # (and only log in complain mode); an allow rule must let the read through.
    for rule in spec.files:
        if "r" in rule.perms and _PLAIN_PATH.fullmatch(rule.path):
            out.append(_access(node, spec, rule.path, rule.deny))
    return out
