"""One parametrised test: every check the manifest's declarations and the baselines expand into
(see `ringzero.pytest_plugin`), judged as `ringzero check` judges it: a baseline control that
does not apply to the node, or whose prerequisite control does not pass, is skipped with the
reason. Ids read like `vm1::slice:web.slice::memory.max` or `local::baseline::RZ-BPF-1`."""

from __future__ import annotations

import pytest

from ringzero.checks import Check, Probe
from ringzero.checks.run import judge


def test_declared(ringzero_check: Check, ringzero_probe: Probe,
                  ringzero_verdicts: dict[str, tuple[dict[str, Check], dict[str, tuple[str, str]]]]) -> None:
    siblings, memo = ringzero_verdicts[ringzero_check.node]
    status, message = judge(ringzero_check, ringzero_probe, siblings, memo)
    if status in ("n/a", "skipped"):
        pytest.skip(message)
    if status == "error":
        raise RuntimeError(message)
    assert status == "pass", message
