"""Checks for FilesystemViewSpec, one per row of expect.expectations() and service: the mount
each declared path is on inside the service's mount namespace (`nsenter -t <pid> -m findmnt`),
its options, for a bind the host's source file itself; the overlay's mount unit active."""

from __future__ import annotations

from ...checks.base import Check, expect_equal
from ...checks.probe import Probe
from ...facts import covering_mount, findmnt_mounts, stat_ids
from .expect import Expectation, expectations, findmnt_script, ids_script, mount_unit
from .spec import FilesystemViewSpec


class ProbeRefused(Exception):
    """A value the check needs could not be read: `error`, never a pass."""


def _row(node: str, spec: FilesystemViewSpec, service: str, row: Expectation) -> Check:
    key = f"shell:{findmnt_script(service)}"
    ids = f"shell:{ids_script(spec, service)}"
    reads = (key, ids) if row.same_as else (key,)

    def verify(p: Probe) -> None:
        text = p.value(key)
        if text is None:
            raise ProbeRefused(f"findmnt in {service}'s mount namespace printed nothing")
        mounts = findmnt_mounts(text)
        if text.strip() == "{}":
            raise AssertionError(f"{service} has no running main process to look at")
        if not mounts:
            raise ProbeRefused(f"findmnt in {service}'s mount namespace did not answer: {text.strip()[:200]}")
        m = covering_mount(mounts, row.path)
        if m is None:
            raise ProbeRefused(f"no mount covers {row.path} in {service}'s view")
        shown = f"{m.target} ({m.fstype} {m.source}, {','.join(m.options)}, root {m.fsroot})"
        if row.at and m.target != row.path:
            raise AssertionError(f"{row.path} is not a mount point in {service}'s view; it is on {shown}")
        missing = [o for o in row.options if o not in m.options]
        if missing:
            raise AssertionError(f"{row.path} in {service}'s view is on {shown}, without {', '.join(missing)}")
        if row.fsroot_in and m.fsroot not in row.fsroot_in:
            raise AssertionError(f"{row.path} in {service}'s view is on {shown}, not systemd's inaccessible node")
        if row.fstype is not None:
            expect_equal(f"filesystem type at {row.path} in {service}'s view", row.fstype, m.fstype)
        if row.same_as is not None:
            seen = stat_ids(p.value(ids))
            host = seen.get(f"host {row.same_as}")
            if host is None:
                raise ProbeRefused(f"the bind source {row.same_as} cannot be stat'ed on the node")
            view = seen.get(f"view {row.path}")
            if view != host:
                raise AssertionError(f"{row.path} in {service}'s view is {view or 'missing'}, not {row.same_as} "
                                     f"(dev:inode {host})")

    return Check(node, f"fsview:{spec.name}", f"{service}:{row.aspect}", verify, reads, row.title)


def _mounted(node: str, spec: FilesystemViewSpec) -> Check:
    unit = mount_unit(spec)

    def verify(p: Probe) -> None:
        expect_equal(f"{unit} ActiveState", "active", p.unit(unit).get("ActiveState"))

    return Check(node, f"fsview:{spec.name}", "overlay-mounted", verify, (f"unit:{unit}",),
                 f"the overlay's mount unit {unit} is active")


def checks(node: str, spec: FilesystemViewSpec) -> list[Check]:
    out = [_mounted(node, spec)] if spec.overlay is not None else []
    for svc in spec.services:
        out += [_row(node, spec, svc, row) for row in expectations(spec)]
    return out
