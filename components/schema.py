"""JSON Schemas generated from the code: the manifest from the spec dataclasses, the node plan
from its TypedDicts (`ringzero.plan_schema`). Nothing is kept by hand beside the types; a unit
test fails when a written schema differs from what this module generates. Example::

    python -m ringzero.schema            # rewrite components/schemas/*.json and the node's copy
    python -m ringzero.schema --check    # exit 1 naming each file that is out of date
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

from . import plan_schema
from .spec import AppArmorProfileSpec, NodePolicies, SeccompProfileSpec, ServiceSpec, Topology
from .spec.manifest import SCHEMA_ID

JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
PLAN_SCHEMA_ID = "https://ringzero.dev/schemas/plan-v1.json"

# What the manifest schema says beyond the annotations: values the specs check in
# __post_init__ and annotate as plain `str`/tuples. A unit test keeps each key a real field.
REFINEMENTS: dict[tuple[type, str], dict[str, Any]] = {
    (AppArmorProfileSpec, "mode"): {"enum": ["enforce", "complain"]},
    (NodePolicies, "host_prep"): {"enum": ["kvm", "xen", None]},
    (ServiceSpec, "max_exposure"): {"minimum": 0, "maximum": 10},
    (SeccompProfileSpec, "rules"): {"minItems": 1},
}
# Fields added within version 1: optional, so documents written before them still load
# (with the description the schema gives them, if any).
ADDED_IN_V1: dict[tuple[type, str], str | None] = {
    (NodePolicies, "services"): "Workload services ringzero installs (optional in v1: documents written before "
                                "it load unchanged)",
    (AppArmorProfileSpec, "adopt"): None,
    (NodePolicies, "firewall"): None,
    (NodePolicies, "namespaces"): None,
    (NodePolicies, "fsviews"): None,
    (NodePolicies, "sockfilter"): None,
    (ServiceSpec, "adopt"): None,
    (NodePolicies, "landlock"): "Landlock rulesets (optional in v1: documents written before it load unchanged)",
    (AppArmorProfileSpec, "services"): "Services that run under the profile (AppArmorProfile=; optional in v1)",
    (NodePolicies, "confined"): "Workloads with everything that confines them; unfolded into the node's other "
                                "fields when the node is built (optional in v1)",
    (ServiceSpec, "max_exposure"): "The highest systemd-analyze security exposure (0.0-10.0) the unit may score with "
                                   "every drop-in of the node's policies (optional in v1)",
}
_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def def_name(cls: type) -> str:
    """A class's name under `$defs`: HostSpec -> host, AppArmorProfileSpec -> app_armor_profile."""
    base = cls.__name__.removesuffix("Spec")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower()


# Literal types that several fields share: one `$defs` entry each, referenced.
NAMED_LITERALS: dict[Any, str] = {plan_schema.Feature: "feature", plan_schema.UnitFeature: "unit_feature"}


class _Generator:
    """One schema's `$defs`, filled as classes are met."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def of(self, tp: Any) -> dict[str, Any]:
        """The schema of one annotation."""
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.NotRequired or origin is typing.Required:
            return self.of(args[0])
        if origin in (typing.Union, types.UnionType):
            if all(a in _SCALARS for a in args):
                return {"type": [_SCALARS[a] for a in args]}
            return {"anyOf": [self.of(a) for a in args]}
        if origin is typing.Literal:
            name = NAMED_LITERALS.get(tp)
            if name is None:
                return {"enum": list(args)}
            self.defs.setdefault(name, {"enum": list(args)})  # one definition, however many users
            return {"$ref": f"#/$defs/{name}"}
        if origin in (tuple, list):
            return {"type": "array", "items": self.of(args[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.of(args[1])}
        if tp in _SCALARS:
            return {"type": _SCALARS[tp]}
        if isinstance(tp, type) and (dataclasses.is_dataclass(tp) or typing.is_typeddict(tp)):
            name = def_name(tp)
            if name not in self.defs:
                self.defs[name] = {}  # recursion guard; filled below
                self.defs[name] = self.object(tp)
            return {"$ref": f"#/$defs/{name}"}
        raise TypeError(f"no JSON Schema for the annotation {tp!r}")

    def object(self, cls: type) -> dict[str, Any]:
        hints = typing.get_type_hints(cls, include_extras=True)
        if typing.is_typeddict(cls):
            names = list(hints)
            # From the hints, not __required_keys__: under `from __future__ import annotations`
            # Python 3.11 cannot see NotRequired in a string annotation.
            required = [n for n in names if typing.get_origin(hints[n]) is not typing.NotRequired]
            extra: dict[tuple[type, str], dict[str, Any]] = {}
        else:
            # The manifest writes every field: all are required but those added within v1.
            names = [f.name for f in dataclasses.fields(cls) if f.init]
            required = [n for n in names if (cls, n) not in ADDED_IN_V1]
            extra = {k: {"description": v} for k, v in ADDED_IN_V1.items() if v is not None}
        props: dict[str, Any] = {}
        for n in names:
            props[n] = {**self.of(hints[n]), **REFINEMENTS.get((cls, n), {}), **extra.get((cls, n), {})}
            if "enum" in props[n]:
                props[n].pop("type", None)
        out: dict[str, Any] = {"type": "object", "additionalProperties": False, "required": required,
                               "properties": props}
        if typing.is_typeddict(cls) and cls.__doc__:
            out = {"description": " ".join(cls.__doc__.split()), **out}
        return out


def manifest_schema() -> dict[str, Any]:
    """The manifest's schema, from `Topology` and the spec classes it holds."""
    gen = _Generator()
    top = gen.object(Topology)
    top["properties"].pop("allocations", None)  # derived when the Topology is built, never written
    top["required"] = ["$schema", "kind", "version", *[r for r in top["required"] if r != "allocations"]]
    top["properties"] = {"$schema": {"const": SCHEMA_ID}, "kind": {"const": "ringzero.manifest"},
                         "version": {"const": 1}, **top["properties"]}
    return {
        "$schema": JSON_SCHEMA,
        "$id": SCHEMA_ID,
        "title": "ringzero policy manifest, version 1",
        "description": "Every host, image, VM and node policy of a ringzero declaration. Structure only: values "
                       "are validated by ringzero's specs when the manifest is loaded.",
        **top,
        "$defs": gen.defs,
    }


def plan_schema_doc() -> dict[str, Any]:
    """The node plan's schema, from `ringzero.plan_schema.NodePlan`."""
    gen = _Generator()
    top = gen.object(plan_schema.NodePlan)
    gen.defs.pop(def_name(plan_schema.NodePlan), None)
    return {
        "$schema": JSON_SCHEMA,
        "$id": PLAN_SCHEMA_ID,
        "title": "ringzero node plan, version 1",
        **top,
        "description": "What the ringzero_node module converges one node to (ringzero.plan.node_plan); it checks "
                       "a plan against this schema before it touches anything. " + top.get("description", ""),
        "$defs": gen.defs,
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


ROOT = Path(__file__).resolve().parent
# The node module's validator carries the plan schema (the node has no jsonschema, no ringzero):
# the generated literal sits between these markers in playbooks/module_utils/ringzero_plan.py.
BEGIN, END = "# BEGIN GENERATED by ringzero.schema\n", "# END GENERATED\n"


def node_validator_path() -> Path:
    from .paths import playbooks_dir

    return playbooks_dir() / "module_utils" / "ringzero_plan.py"


def python_literal(value: Any, depth: int = 0) -> str:
    """`value` as Python source in the hanging-indent layout pep8 (ansible-test sanity) accepts,
    no line over 120 characters."""
    pad, inner = "    " * depth, "    " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{k!r}: {python_literal(v, depth + 1)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value:
        flat = repr(value)
        if len(flat) + len(inner) <= 100:
            return flat
        return "[\n" + "\n".join(f"{inner}{python_literal(v, depth + 1)}," for v in value) + f"\n{pad}]"
    if isinstance(value, str) and len(value) > 80:
        words = textwrap.wrap(value, 80, drop_whitespace=False)
        return "(\n" + "\n".join(f"{inner}{w!r}" for w in words) + f"\n{pad})"
    return repr(value)


def with_node_schema(source: str) -> str:
    """`source` (ringzero_plan.py) with the generated schema literal between the markers."""
    head, rest = source.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    literal = python_literal(plan_schema_doc())
    return head + BEGIN + "SCHEMA = " + literal + "\n" + END + tail


def outputs() -> dict[Path, str]:
    """Every generated file and its content."""
    validator = node_validator_path()
    return {
        ROOT / "schemas" / "manifest-v1.json": dumps(manifest_schema()),
        ROOT / "schemas" / "plan-v1.json": dumps(plan_schema_doc()),
        validator: with_node_schema(validator.read_text()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--check", action="store_true", help="only say which files are out of date")
    args = p.parse_args(argv)
    stale = [path for path, text in outputs().items() if not path.exists() or path.read_text() != text]
    for path in stale:
        if args.check:
            print(f"{path}: out of date, run `python -m ringzero.schema`", file=sys.stderr)
        else:
            path.write_text(outputs()[path])
            print(f"wrote {path}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
