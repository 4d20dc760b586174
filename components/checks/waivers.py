"""Waivers: a failing control accepted on some hosts, for a reason, until a date.

A waivers file (YAML)::

    waivers:
      - control: RZ-PTRACE-1          # a control id, or a pattern of them (fnmatch): "RZ-KVM-*"
        hosts: ["build-*", "vm1"]     # host names or patterns
        reason: gdb attaches to running builds on these machines (TICKET-42)
        expires: 2027-03-31           # the last day the waiver holds

A waived failure shows as `waived` with its reason; once `expires` has passed the control
counts again as failed, and the report says the waiver expired.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

_FIELDS = {"control", "hosts", "reason", "expires"}


class WaiverError(ValueError):
    """The waivers file is unusable: which waiver, which field, what is allowed."""


@dataclass(frozen=True)
class Waiver:
    control: str
    hosts: tuple[str, ...]
    reason: str
    expires: dt.date
    index: int = 0  # position in its file, for messages

    def covers(self, control: str, host: str) -> bool:
        return fnmatchcase(control, self.control) and any(fnmatchcase(host, h) for h in self.hosts)

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def describe(self) -> str:
        return f"waiver #{self.index} ({self.control} on {', '.join(self.hosts)}) until {self.expires}: {self.reason}"


def _entry(i: int, raw: Any, where: str) -> Waiver:
    at = f"{where}: waiver #{i}"
    if not isinstance(raw, dict):
        raise WaiverError(f"{at}: expected a mapping with {', '.join(sorted(_FIELDS))}")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise WaiverError(f"{at}: unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_FIELDS))}")
    missing = _FIELDS - set(raw)
    if missing:
        raise WaiverError(f"{at}: missing {', '.join(sorted(missing))} (every waiver names its control, hosts, "
                          "reason and expiry)")
    control, hosts, reason, expires = raw["control"], raw["hosts"], raw["reason"], raw["expires"]
    if not isinstance(control, str) or not control.strip():
        raise WaiverError(f"{at}: control={control!r}; allowed: a control id such as RZ-PTRACE-1, or a pattern")
    if isinstance(hosts, str):
        hosts = [hosts]
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h for h in hosts):
        raise WaiverError(f"{at}: hosts={raw['hosts']!r}; allowed: a host name or pattern, or a list of them")
    if not isinstance(reason, str) or len(reason.strip()) < 10:
        raise WaiverError(f"{at}: reason={reason!r}; allowed: a sentence saying why (at least 10 characters)")
    if isinstance(expires, str):
        with contextlib.suppress(ValueError):
            expires = dt.date.fromisoformat(expires)
    if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
        raise WaiverError(f"{at}: expires={raw['expires']!r}; allowed: a date, YYYY-MM-DD")
    return Waiver(control.strip(), tuple(hosts), " ".join(reason.split()), expires, i)


def parse_waivers(data: Any, where: str = "waivers") -> list[Waiver]:
    if not isinstance(data, dict) or set(data) != {"waivers"} or not isinstance(data["waivers"], list):
        raise WaiverError(f"{where}: expected a document with one key, `waivers:`, holding a list")
    return [_entry(i, raw, where) for i, raw in enumerate(data["waivers"], 1)]


def load_waivers(path: str | Path) -> list[Waiver]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise WaiverError(f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise WaiverError(f"{path}: not YAML: {e}") from None
    return parse_waivers(data, str(path))


def find(waivers: list[Waiver], control: str, host: str) -> Waiver | None:
    """The waiver for (control, host): an active one first, else the latest-expiring one."""
    hits = sorted((w for w in waivers if w.covers(control, host)), key=lambda w: w.expires, reverse=True)
    return hits[0] if hits else None
