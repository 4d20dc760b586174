"""One parametrised test: every check the manifest's declarations and the baselines expand into
(see conftest), judged as `ringzero check` judges it: a baseline control that does not apply to
the node, or whose prerequisite control does not pass, is skipped with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from ringzero.checks import Check, Probe
from ringzero.checks.run import judge


def test_declared(check: Check, node: Probe, verdicts: Any) -> None:
    siblings, memo = verdicts[check.node]
    status, message = judge(check, node, siblings, memo)
    if status in ("n/a", "skipped"):
        pytest.skip(message)
    if status == "error":
        raise RuntimeError(message)
    assert status == "pass", message
