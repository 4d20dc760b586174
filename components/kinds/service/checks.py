"""Checks for the workload services ringzero installs (ServiceSpec): one per row of UNIT_STATE,
and the unit's exposure re-scored on the node where the spec declares a max_exposure."""

from __future__ import annotations

import shlex

from ...checks.base import Check, expect_equal
from ...checks.probe import Probe
from ...facts import systemd_security
from .expect import UNIT_STATE
from .exposure import TOP
from .spec import ServiceSpec


def _state(node: str, spec: ServiceSpec, prop: str, value: str, aspect: str, title: str) -> Check:
    def verify(p: Probe) -> None:
        expect_equal(f"{spec.name} {prop}", value, p.unit(spec.name).get(prop))

    return Check(node, f"service:{spec.name}", aspect, verify, (f"unit:{spec.name}",), title)


def security_read(unit: str) -> str:
    """The probe key that scores `unit` with the node's own systemd (read-only: it asks the
    service manager for the unit's settings; no colours, no links; bounded like every read)."""
    return "shell:" + shlex.join(["env", "SYSTEMD_COLORS=0", "SYSTEMD_URLIFY=0", "systemd-analyze", "security",
                                  "--no-pager", "--", unit])


def _exposure(node: str, spec: ServiceSpec) -> Check:
    """The unit as the node runs it (its file, every drop-in, whoever wrote it) scores at most
    max_exposure in the node's `systemd-analyze security`. A score that cannot be read (no
    systemd-analyze, one without `security`) is an error, never a pass."""
    limit = spec.max_exposure
    assert limit is not None
    key = security_read(spec.name)

    def verify(p: Probe) -> None:
        load = p.unit(spec.name).get("LoadState")
        if load != "loaded":
            raise AssertionError(f"{spec.name} is not loaded on the node (LoadState={load}): no unit to score")
        out = p.value(key)
        got = systemd_security(out).get(spec.name)
        if got is None:
            raise RuntimeError(f"systemd-analyze security gave no score for {spec.name}: "
                               f"{' '.join((out or '(no output)').split())[-300:]}")
        if got.exposure > limit:
            raise AssertionError(f"{spec.name} scores {got.exposure} {got.level} on the node, above max_exposure "
                                 f"{limit}; what adds most: {got.top(TOP)}")

    return Check(node, f"service:{spec.name}", "exposure", verify, (f"unit:{spec.name}", key),
                 f"systemd-analyze security scores {spec.name} at most {spec.max_exposure}")


def checks(node: str, spec: ServiceSpec) -> list[Check]:
    out = [_state(node, spec, *row) for row in UNIT_STATE]
    if spec.max_exposure is not None:
        out.append(_exposure(node, spec))
    return out
