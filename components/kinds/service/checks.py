"""Checks for the workload services ringzero installs (ServiceSpec): one per row of UNIT_STATE."""

from __future__ import annotations

from ...checks.base import Check, expect_equal
from ...checks.probe import Probe
from .expect import UNIT_STATE
from .spec import ServiceSpec


def _state(node: str, spec: ServiceSpec, prop: str, value: str, aspect: str, title: str) -> Check:
    def verify(p: Probe) -> None:
        expect_equal(f"{spec.name} {prop}", value, p.unit(spec.name).get(prop))

    return Check(node, f"service:{spec.name}", aspect, verify, (f"unit:{spec.name}",), title)


def checks(node: str, spec: ServiceSpec) -> list[Check]:
    return [_state(node, spec, *row) for row in UNIT_STATE]
