"""Where the shipped data lives (inside the wheel, or beside components/ in a checkout), and
ringzero's cache on this machine."""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    for candidate in (_PKG / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"ringzero's {name}/ directory is missing from {_PKG} (broken install)")


def templates_dir() -> Path:
    return _data_dir("templates")


def playbooks_dir() -> Path:
    return _data_dir("playbooks")


def compliance_dir() -> Path:
    """The testinfra suite, `ringzero/compliance_suite` (components/compliance_suite in a checkout)."""
    suite = _PKG / "compliance_suite"
    if (suite / "conftest.py").is_file():
        return suite
    raise FileNotFoundError(f"ringzero's compliance suite is missing from {_PKG} (broken install)")


def cache_dir() -> Path:
    """`$RINGZERO_CACHE`, else `~/.cache/ringzero`: what ringzero keeps between runs here."""
    return Path(os.environ.get("RINGZERO_CACHE", Path.home() / ".cache" / "ringzero"))
