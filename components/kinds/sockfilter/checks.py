"""Checks for SocketFilter: each service's unit carries the declared filters, and the kernel has
systemd's BPF programs attached to the service's cgroup."""

from __future__ import annotations

import shlex

from ...checks.base import Check
from ...checks.probe import Probe
from ...facts import bpftool_cgroup, systemctl_show_lists
from .expect import BIND_ATTACH, LEGACY_ATTACH, PROPERTIES, attach_types, expected, parse_shown
from .spec import SocketFilterSpec


class Unread(Exception):
    """The node did not answer the read (no bpftool, no systemctl): `error`, never pass or fail."""


def show_command(service: str) -> str:
    return shlex.join(["systemctl", "show", service, "-p", ",".join(("LoadState", *PROPERTIES))])


def cgroup_command(service: str) -> str:
    """The BPF programs attached to the service's cgroup (none when it does not run)."""
    q = shlex.quote(service)
    # bpftool -j prints nothing at all for a cgroup without programs (captured): "[]" then, so
    # that an empty cgroup (a fail) differs from bpftool not answering (an error).
    return (f'cg=$(systemctl show -p ControlGroup --value {q}); [ -n "$cg" ] || {{ echo "not running"; exit 0; }}; '
            'out=$(bpftool -j cgroup show "/sys/fs/cgroup$cg") || { echo "bpftool failed"; exit 0; }; '
            'echo "${out:-[]}"')


def _properties(node: str, spec: SocketFilterSpec, service: str) -> Check:
    key = f"shell:{show_command(service)}"
    want = expected(spec)

    def verify(p: Probe) -> None:
        shown = systemctl_show_lists(p.value(key))
        if "LoadState" not in shown:
            raise Unread(f"`{show_command(service)}` printed no properties: {p.value(key)!r}")
        if shown["LoadState"] != ["loaded"]:
            raise AssertionError(f"{service} is not loaded (LoadState={' '.join(shown['LoadState'])})")
        for prop, values in want.items():
            have = parse_shown(prop, shown.get(prop, []))
            if have != values:
                raise AssertionError(f"{service} shows {prop}={' '.join(shown.get(prop, []))!r}, declared "
                                     f"{' '.join(sorted(map(str, values)))}")

    return Check(node, f"sockfilter:{spec.name}", f"{service}:properties", verify, (key,),
                 f"{service} carries {', '.join(want)}")


def _attached(node: str, spec: SocketFilterSpec, service: str) -> Check:
    key = f"shell:{cgroup_command(service)}"
    want = attach_types(spec)

    def verify(p: Probe) -> None:
        text = (p.value(key) or "").strip()
        if text == "not running":
            raise AssertionError(f"{service} is not running: no cgroup holds its filters")
        if not text.startswith("["):
            raise Unread(f"bpftool did not list {service}'s cgroup: {' '.join(text.split())}")
        have = {LEGACY_ATTACH.get(t, t) for t, _ in bpftool_cgroup(text)}
        missing = sorted(want - have)
        if missing:
            why = (" (SocketBindAllow=/SocketBindDeny= are enforced only by a systemd built with "
                   "+BPF_FRAMEWORK, see `systemctl --version`; Debian 12's is not)"
                   if set(missing) & BIND_ATTACH else "")
            raise AssertionError(f"{service}'s cgroup has no BPF program at {', '.join(missing)} "
                                 f"(attached: {', '.join(sorted(have)) or 'none'}){why}")

    return Check(node, f"sockfilter:{spec.name}", f"{service}:bpf-attached", verify, (key,),
                 f"systemd's BPF filters are attached to {service}'s cgroup")


def checks(node: str, spec: SocketFilterSpec) -> list[Check]:
    return [c for svc in spec.services for c in (_properties(node, spec, svc), _attached(node, spec, svc))]
