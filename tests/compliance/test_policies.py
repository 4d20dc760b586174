"""One parametrised test: every check the manifest's declarations and the baselines expand into
(see conftest). A baseline control that does not apply to the node, or whose prerequisite
control does not pass, is skipped with the reason."""

from __future__ import annotations

import pytest
from ringzero.checks import Check, Probe
from ringzero.checks.base import NotApplicable


def test_declared(check: Check, node: Probe, all_checks: list[Check]) -> None:
    for aspect in check.requires:
        required = next(c for c in all_checks if c.node == check.node and c.aspect == aspect)
        try:
            required.verify(node)
        except (AssertionError, NotApplicable):
            pytest.skip(f"requires {aspect}, which did not pass")
    try:
        check.verify(node)
    except NotApplicable as e:
        pytest.skip(str(e))
