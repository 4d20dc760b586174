"""Checks for the workload services ringzero installs (ServiceSpec)."""

from __future__ import annotations

from ..spec import ServiceSpec
from .base import Check, expect_equal
from .probe import Probe


def checks(node: str, spec: ServiceSpec) -> list[Check]:
    def active(p: Probe) -> None:
        expect_equal(f"{spec.name} ActiveState", "active", p.unit(spec.name).get("ActiveState"))

    def enabled(p: Probe) -> None:
        expect_equal(f"{spec.name} UnitFileState", "enabled", p.unit(spec.name).get("UnitFileState"))

    reads = (f"unit:{spec.name}",)
    return [
        Check(node, f"service:{spec.name}", "active", active, reads, "the service runs"),
        Check(node, f"service:{spec.name}", "enabled", enabled, reads, "the service starts at boot"),
    ]
