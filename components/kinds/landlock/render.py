"""A Landlock spec's file: the ruleset JSON its launcher applies (the launcher is planned by kind.py)."""

from __future__ import annotations

import functools
import json
from importlib import resources

from .expect import ruleset, ruleset_path
from .spec import LandlockSpec


def ruleset_text(spec: LandlockSpec) -> str:
    """The ruleset as the node holds it (its sha256 is what the running process carries)."""
    return json.dumps(ruleset(spec), indent=2, sort_keys=True) + "\n"


def render_landlock(spec: LandlockSpec) -> dict[str, str]:
    return {ruleset_path(spec): ruleset_text(spec)}


@functools.cache
def launcher_text() -> str:
    """The launcher shipped to nodes: components/kinds/landlock/launcher.py, byte for byte."""
    return resources.files(__package__).joinpath("launcher.py").read_text(encoding="utf-8")
