"""A node that answers the probe's batched reads from a dict, for judging checks on canned output."""

from __future__ import annotations

from dataclasses import dataclass

from ringzero.checks import Check, Probe


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str = ""


class CannedHost:
    """A node answering the probe's batched reads from a dict (absent keys are missing)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def run(self, command: str, *args: str) -> Result:
        out = ""
        for key in args[1:]:
            value = self.values.get(key)
            out += f"\x1e{key}\n" + (f"{value}\n" if value is not None else "\x1emissing\n")
        return Result(0, out)


def verify(check: Check, values: dict[str, str]) -> None:
    """Run `check` against a node holding `values`; raises AssertionError as on a real node."""
    probe = Probe(CannedHost(values), check.node)
    probe.fetch(check.reads)
    check.verify(probe)
