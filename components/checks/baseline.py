"""Built-in baselines: the controls of `catalogue.yaml` as `Check`s, for nodes with no declaration.

The catalogue is data (schema `schemas/catalogue-v1.json`); this module is its one
interpreter. Example::

    cat = load_catalogue()
    checks = baseline_checks("vm1", cat.baselines["isolation"], {"nested": "on"})
    # ids: vm1::baseline::RZ-CGROUP-1, … each with title, impact and rationale
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .base import Check, NotApplicable
from .probe import Probe

CATALOGUE = Path(__file__).with_name("catalogue.yaml")
_SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "catalogue-v1.json"
_OPS = ("equals", "one_of", "has_words", "at_least", "matches", "not_matches", "present")
_PARAM = re.compile(r"\$\{([a-z_]+)\}")
_BOOL = {"y": "on", "1": "on", "n": "off", "0": "off"}


class CatalogueError(ValueError):
    """The catalogue, a baseline name or a parameter is not usable (a usage error)."""


@dataclass(frozen=True)
class Param:
    default: str
    allowed: tuple[str, ...]


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    impact: str
    rationale: str
    expect: dict[str, Any]
    scope: str = "all"
    requires: tuple[str, ...] = ()
    params: dict[str, Param] = field(default_factory=dict)
    applies_if: dict[str, Any] | None = None

    def reads(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_reads(self.expect) + (_reads(self.applies_if) if self.applies_if else ())))


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    controls: tuple[Control, ...]
    hypervisor: bool = False  # hypervisor-scoped controls apply whether or not a node looks like one

    @property
    def params(self) -> dict[str, Param]:
        return {k: v for c in self.controls for k, v in c.params.items()}


@dataclass(frozen=True)
class Catalogue:
    baselines: dict[str, Baseline]
    controls: dict[str, Control]

    def baseline(self, name: str) -> Baseline:
        if name not in self.baselines:
            allowed = ", ".join(self.baselines)
            raise CatalogueError(f"--baseline {name!r} is not a built-in baseline; allowed: {allowed}")
        return self.baselines[name]


def _reads(cond: dict[str, Any]) -> tuple[str, ...]:
    if "read" in cond:
        return (str(cond["read"]),)
    return tuple(r for sub in cond.get("any", cond.get("all", [])) for r in _reads(sub))


def _check_cond(cid: str, cond: dict[str, Any], params: dict[str, Param]) -> None:
    """What the schema cannot say: exactly one operator per leaf, regexes compile, ${params} declared."""
    for sub in cond.get("any", cond.get("all", [])):
        _check_cond(cid, sub, params)
    if "read" not in cond:
        return
    ops = [k for k in _OPS if k in cond]
    if len(ops) != 1:
        raise CatalogueError(f"control {cid}: a condition on {cond['read']} needs exactly one of {', '.join(_OPS)}")
    for key in ("matches", "not_matches"):
        if key in cond:
            try:
                re.compile(cond[key])
            except re.error as e:
                raise CatalogueError(f"control {cid}: {key} {cond[key]!r} is not a regular expression: {e}") from None
    for name in _PARAM.findall(json.dumps(cond)):
        if name not in params:
            raise CatalogueError(f"control {cid}: ${{{name}}} is used but not declared in params")


def parse_catalogue(data: dict[str, Any]) -> Catalogue:
    schema = json.loads(_SCHEMA.read_text())
    import jsonschema  # here: a program run reads no catalogue, and the import is 80 ms of every run

    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        raise CatalogueError(f"catalogue: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}")
    controls: dict[str, Control] = {}
    for c in data["controls"]:
        if c["id"] in controls:
            raise CatalogueError(f"catalogue: control {c['id']} is declared twice")
        params = {k: Param(v["default"], tuple(v["allowed"])) for k, v in c.get("params", {}).items()}
        for k, p in params.items():
            if p.default not in p.allowed:
                raise CatalogueError(f"control {c['id']}: param {k} default {p.default!r} is not one of {p.allowed}")
        ctl = Control(c["id"], c["title"], c["impact"], " ".join(c["rationale"].split()), c["expect"],
                      c.get("scope", "all"), tuple(c.get("requires", ())), params, c.get("applies_if"))
        _check_cond(ctl.id, ctl.expect, params)
        if ctl.applies_if:
            _check_cond(ctl.id, ctl.applies_if, params)
        controls[ctl.id] = ctl
    for ctl in controls.values():
        for r in ctl.requires:
            if r not in controls or list(controls).index(r) >= list(controls).index(ctl.id):
                raise CatalogueError(f"control {ctl.id}: requires {r}, which must be a control declared before it")
    baselines: dict[str, Baseline] = {}
    for name, b in data["baselines"].items():
        ids = list(controls) if b["controls"] == "all" else b["controls"]
        missing = [i for i in ids if i not in controls]
        if missing:
            raise CatalogueError(f"baseline {name}: unknown controls {', '.join(missing)}")
        baselines[name] = Baseline(name, b["description"], tuple(controls[i] for i in ids), b.get("hypervisor", False))
    return Catalogue(baselines, controls)


@cache
def load_catalogue(path: Path = CATALOGUE) -> Catalogue:
    return parse_catalogue(yaml.safe_load(path.read_text()))


def resolve_params(baseline: Baseline, given: dict[str, str]) -> dict[str, str]:
    """The baseline's parameters: defaults, overridden by `given` (validated: name and value)."""
    known = baseline.params
    out = {k: p.default for k, p in known.items()}
    for k, v in given.items():
        if k not in known:
            allowed = ", ".join(known) or "none"
            raise CatalogueError(f"--param {k}={v}: baseline {baseline.name} has no parameter {k!r}; "
                                 f"allowed: {allowed}")
        if v not in known[k].allowed:
            raise CatalogueError(f"--param {k}={v}: allowed values: {', '.join(known[k].allowed)}")
        out[k] = v
    return out


def parse_params(items: list[str]) -> dict[str, str]:
    """`NAME=VALUE` items (`--param nested=on`) as a mapping; anything else is an error."""
    out: dict[str, str] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise CatalogueError(f"--param {item!r}: expected NAME=VALUE")
        out[k.strip()] = v.strip()
    return out


def resolve_all(baselines: list[Baseline], given: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each baseline's parameters (`resolve_params`); a parameter no selected baseline has is an error."""
    unknown = [k for k in given if not any(k in b.params for b in baselines)]
    if unknown:
        known = ", ".join(sorted({k for b in baselines for k in b.params})) or "none"
        raise CatalogueError(f"--param {unknown[0]}: no selected baseline has it (parameters: {known})")
    return {b.name: resolve_params(b, {k: v for k, v in given.items() if k in b.params}) for b in baselines}


# ---- evaluation ----------------------------------------------------------------------------
def _label(key: str) -> str:
    kind, _, path = key.partition(":")
    return {"stat": f"{path} (mode owner group)", "fstype": f"the filesystem type of {path}"}.get(kind, path)


def _sub(value: Any, params: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _PARAM.sub(lambda m: params[m.group(1)], value)
    if isinstance(value, list):
        return [_sub(v, params) for v in value]
    return value


def holds(cond: dict[str, Any], probe: Probe, params: dict[str, str]) -> tuple[bool, str]:
    """Whether `cond` holds on the probed node, and what the node shows when it does not."""
    if "any" in cond or "all" in cond:
        results = [holds(c, probe, params) for c in cond.get("any", cond.get("all", []))]
        if "any" in cond:
            if any(r[0] for r in results):
                return True, ""
            # what the node shows, rather than which of the alternatives it lacks
            shown = [r[1] for r in results if not r[1].endswith("does not exist")] or [r[1] for r in results]
            return False, "; ".join(shown)
        bad = [r[1] for r in results if not r[0]]
        return not bad, "; ".join(bad)
    key, label = cond["read"], _label(cond["read"])
    raw = probe.value(key)
    if "present" in cond:
        ok = (raw is not None) == cond["present"]
        return ok, "" if ok else f"{label} {'does not exist' if raw is None else 'exists'}"
    if raw is None:
        return False, f"{label} does not exist"
    value = raw.strip()
    if cond.get("as_bool"):
        value = _BOOL.get(value.lower(), value)
    op = next(k for k in _OPS if k in cond)
    want = _sub(cond[op], params)
    if op == "equals":
        ok, expected = value == want, repr(want)
    elif op == "one_of":
        ok, expected = value in want, "one of " + ", ".join(map(repr, want))
    elif op == "has_words":
        missing = [w for w in want if w not in value.split()]
        ok, expected = not missing, f"to include {', '.join(want)} (missing: {', '.join(missing)})"
    elif op == "at_least":
        ok = value.lstrip("-").isdigit() and int(value) >= int(want)
        expected = f"at least {want}"
    elif op == "matches":
        ok, expected = re.search(want, value, re.M) is not None, f"to match /{want}/"
    else:  # not_matches
        hits = [m.group(0) for m in re.finditer(f"(?m)^.*(?:{want}).*$", value)]
        if hits:
            return False, f"{label} has {len(hits)} offending line(s): " + "; ".join(h.strip() for h in hits[:5])
        return True, ""
    if ok:
        return True, ""
    brief = value if len(value) <= 120 else value[:117] + "..."
    return False, f"{label} is {brief!r}, expected {expected}"


def baseline_checks(node: str, baseline: Baseline, params: dict[str, str]) -> list[Check]:
    """One check per control of `baseline` for `node`; `params` as `resolve_params` returns them."""

    def check(ctl: Control) -> Check:
        def verify(p: Probe) -> None:
            if ctl.applies_if and not (baseline.hypervisor and ctl.scope == "hypervisor"):
                ok, why = holds(ctl.applies_if, p, params)
                if not ok:
                    raise NotApplicable(f"not applicable: {why}")
            ok, why = holds(ctl.expect, p, params)
            if not ok:
                raise AssertionError(f"{_sub(ctl.title, params)}: {why}")

        return Check(node, "baseline", ctl.id, verify, ctl.reads(), _sub(ctl.title, params), ctl.impact,
                     ctl.rationale, ctl.requires)

    return [check(c) for c in baseline.controls]
