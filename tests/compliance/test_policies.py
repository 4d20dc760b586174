"""One parametrised test: every check the manifest's declarations expand into (see conftest)."""

from __future__ import annotations

from ringzero.checks import Check, Probe


def test_declared(check: Check, node: Probe) -> None:
    check.verify(node)
