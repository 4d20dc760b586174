"""Checks for AppArmorProfile: loaded in the declared mode; declared denials really deny."""

from __future__ import annotations

from ...checks.base import Check
from ...checks.probe import Probe
from ...facts import APPARMOR_PROFILES as PROFILES
from ...facts import apparmor_profiles
from .expect import loaded_mode, reads
from .spec import AppArmorProfileSpec


def _loaded(node: str, spec: AppArmorProfileSpec) -> Check:
    def verify(p: Probe) -> None:
        text = p.file(PROFILES)
        if text is None:
            raise AssertionError(f"AppArmor is not enabled: {PROFILES} is missing")
        mode = apparmor_profiles(text).get(spec.name)
        if mode is None:
            raise AssertionError(f"profile {spec.name} is not loaded")
        if mode != want:
            raise AssertionError(f"profile {spec.name} is loaded in {mode} mode, declared {want}")

    want = loaded_mode(spec)
    return Check(node, f"apparmor:{spec.name}", "mode", verify, (f"file:{PROFILES}",),
                 f"loaded in {want} mode")


def _access(node: str, spec: AppArmorProfileSpec, path: str, denied: bool, expect_denied: bool) -> Check:
    """Run `cat path` confined by the profile (aa-exec): it fails with EACCES only if denied.

    It only reads, and what it reads stays on the node (stdout to /dev/null: a denial that
    does not deny must not ship /etc/shadow to the checker); Probe.run bounds it in time."""

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


def _service(node: str, spec: AppArmorProfileSpec, service: str) -> Check:
    """The service's main process runs confined by the profile, in its declared mode
    (`/proc/<MainPID>/attr/current` is `<profile> (<mode>)`)."""
    want = f"{spec.name} ({loaded_mode(spec)})"

    def verify(p: Probe) -> None:
        label = p.value(f"proc:{service}:attr/current")
        if label is None:
            raise AssertionError(f"{service} has no running main process (or its AppArmor label cannot be read)")
        if label.strip() != want:
            raise AssertionError(f"{service} runs as {label.strip()!r}, declared {want!r}")

    return Check(node, f"apparmor:{spec.name}", f"service:{service}", verify,
                 (f"proc:{service}:attr/current",), f"{service} runs confined by it")


def checks(node: str, spec: AppArmorProfileSpec) -> list[Check]:
    # Real accesses for plain (glob-free) read rules (expect.reads).
    return [_loaded(node, spec), *(_service(node, spec, svc) for svc in spec.services),
            *(_access(node, spec, *read) for read in reads(spec))]
