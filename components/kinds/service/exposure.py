"""The exposure gate: a service's `systemd-analyze security` score, as its node will run it.

Scored offline on the machine that plans the node (`pulumi preview`, `ringzero plan|render`):
every file the node's plan writes under /etc/systemd/system goes into a scratch root (the
service's unit, each drop-in any kind renders for it, and drop-ins for all services such as
`service.d/`), and `systemd-analyze security --offline=true --root=<scratch>` scores the
services in one run; systemd itself decides which drop-ins apply, as it will on the node.
A service declaring `max_exposure` that scores above it fails planning, naming node, service,
score, maximum and the settings that add most. Example::

    scores = exposures(policies, plan)          # {'web.service': SecurityAssessment(exposure=9.2, ...)}
    gate(policies, plan)                        # SpecError when a score is above its max_exposure

The score is systemd's: another systemd version may weigh the settings differently (the node
check, `checks.py`, re-scores with the node's own systemd). Where `systemd-analyze` is missing
or too old for `--offline` (systemd < 250), a node with a `max_exposure` cannot be planned
(the message names the tool); nodes without one are planned as before, unscored.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ... import toolcache
from ...facts import SecurityAssessment, systemd_security
from ...render import SYSTEMD_DIR
from ...spec.errors import SpecError

if TYPE_CHECKING:
    from ...plan_schema import NodePlan
    from ...spec.node import NodePolicies

TOOL = "systemd-analyze"
TIMEOUT_S = 60  # one run scores every service of a node (about 20 ms each here)
TOP = 5  # the largest contributions a refusal names


class ScoringUnavailable(Exception):
    """systemd-analyze is missing, too old for --offline, or did not score a unit."""


def unit_tree(plan: NodePlan) -> dict[str, str]:
    """The plan's files under /etc/systemd/system (units and every drop-in), path -> content."""
    return {p: f["content"] for p, f in plan["files"].items() if p.startswith(SYSTEMD_DIR + "/")}


def tool_version() -> str:
    """`systemd 252 (252.39-1~deb12u2)`: the systemd whose weights give the score."""
    path = shutil.which(TOOL)
    if path is None:
        raise ScoringUnavailable(f"`{TOOL}` is not installed on this machine (PATH={os.environ.get('PATH', '')})")
    return _version(path)


@functools.cache
def _version(path: str) -> str:
    def ask() -> str:
        try:
            res = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ScoringUnavailable(f"`{path} --version` did not run: {e}") from None
        return (res.stdout.splitlines() or ["systemd (unknown version)"])[0].strip()

    return toolcache.remembered(TOOL, f"{path} --version", ask) or "systemd (unknown version)"


def score(files: Mapping[str, str], units: tuple[str, ...]) -> dict[str, SecurityAssessment]:
    """`units` scored offline with `files` (absolute /etc/systemd/system paths -> content) as
    the only unit files; raises ScoringUnavailable naming what went wrong."""
    return _score(tuple(sorted(files.items())), tuple(sorted(units)))


@functools.cache
def _score(files: tuple[tuple[str, str], ...], units: tuple[str, ...]) -> dict[str, SecurityAssessment]:
    """The scores, from systemd-analyze's output for exactly these files and units (remembered
    across runs when every unit was scored: ringzero.toolcache)."""
    if not units:
        return {}
    question = json.dumps({"files": files, "units": units})
    out = toolcache.remembered(TOOL, question, lambda: _score_output(files, units))
    return systemd_security(out or "")


def _score_output(files: tuple[tuple[str, str], ...], units: tuple[str, ...]) -> str:
    version = tool_version()
    path = shutil.which(TOOL)
    assert path is not None  # tool_version found it
    with tempfile.TemporaryDirectory(prefix="ringzero-exposure-") as tmp:
        root = Path(tmp)
        for name, text in files:
            rel = PurePosixPath(name).relative_to("/")
            if ".." in rel.parts:  # the specs never render one; a scratch root is no place to find out
                raise ScoringUnavailable(f"refusing to score with the unit path {name!r}")
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        cmd = [path, "security", "--offline=true", f"--root={root}", "--no-pager", "--", *units]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
                                 env={**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_URLIFY": "0"})
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ScoringUnavailable(f"`{TOOL} security --offline=true` did not finish: {e}") from None
    found = systemd_security(res.stdout)
    missing = [u for u in units if u not in found]
    if missing:
        said = " ".join((res.stderr or res.stdout).replace(tmp, "<root>").split())[-400:]
        raise ScoringUnavailable(f"`{TOOL} security --offline=true` ({version}; --offline needs systemd >= 250) "
                                 f"gave no score for {', '.join(missing)} (rc={res.returncode}): {said}")
    return str(res.stdout)


def exposures(policies: NodePolicies, plan: NodePlan, *, required_only: bool = False) -> dict[str, SecurityAssessment]:
    """The offline score of each service the node installs (with `required_only`, of those that
    declare a max_exposure); raises ScoringUnavailable where they cannot be scored."""
    units = tuple(s.name for s in policies.services if s.max_exposure is not None or not required_only)
    return score(unit_tree(plan), units)


def gate(policies: NodePolicies, plan: NodePlan) -> dict[str, SecurityAssessment]:
    """Refuse (SpecError) a service scoring above its max_exposure, or one that cannot be scored;
    returns the scores of the services that declare a max_exposure."""
    bounded = [s for s in policies.services if s.max_exposure is not None]
    if not bounded:
        return {}
    try:
        scores = exposures(policies, plan, required_only=True)
        version = tool_version()
    except ScoringUnavailable as e:
        first = bounded[0]
        raise SpecError("Service", first.name, "max_exposure", first.max_exposure,
                        f"a max_exposure only where node {policies.node!r} can be scored when it is planned: {e}; "
                        f"install systemd >= 250 (Debian 12: the `systemd` package) where you run preview, or "
                        "declare no max_exposure") from None
    for svc in bounded:
        got = scores[svc.name]
        assert svc.max_exposure is not None
        if got.exposure > svc.max_exposure:
            drop_ins = sorted(p for p in plan["files"] if p.startswith(f"{SYSTEMD_DIR}/{svc.name}.d/"))
            raise SpecError(
                "Service", svc.name, "max_exposure", svc.max_exposure,
                f"a max_exposure at or above the unit's score: on node {policies.node!r}, {svc.name} with "
                f"{len(drop_ins)} drop-in(s) of the node's policies scores {got.exposure} {got.level} "
                f"(systemd-analyze security --offline, {version}), above max_exposure {svc.max_exposure}; "
                f"what adds most: {got.top(TOP)}")
    return scores
