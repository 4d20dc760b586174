"""A check: one observable fact about one node, derived from a declared spec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .probe import Probe


@dataclass(frozen=True)
class Check:
    """`verify` raises AssertionError with what was expected and what the node shows.

    `reads` are the probe keys it needs; they are fetched for all checks of a node at once.
    A `verify` that passes may return a note (what a best_effort policy could not apply): it
    becomes the passing outcome's message, shown in every report.
    """

    node: str
    subject: str  # "slice:web.slice"
    aspect: str  # "memory.max"
    verify: Callable[[Probe], str | None] = field(compare=False)
    reads: tuple[str, ...] = ()
    title: str = ""
    impact: str = "high"  # low | medium | high | critical
    rationale: str = ""
    requires: tuple[str, ...] = ()  # controls of the same node that must pass first

    @property
    def control(self) -> str:
        """What the check is across nodes (a column of the report): `slice:web.slice::memory.max`,
        or a baseline control's id."""
        return self.aspect if self.subject == "baseline" else f"{self.subject}::{self.aspect}"

    @property
    def id(self) -> str:
        """Readable test id: `vm1::slice:web.slice::memory.max`."""
        return f"{self.node}::{self.subject}::{self.aspect}"


class NotApplicable(Exception):
    """Raised by `verify` when the check does not apply to the node (the message says why)."""


def expect_equal(what: str, expected: str, actual: str | None) -> None:
    if actual is None:
        raise AssertionError(f"{what}: expected {expected!r}, but it does not exist on the node")
    if actual.strip() != expected:
        raise AssertionError(f"{what}: expected {expected!r}, the node shows {actual.strip()!r}")
