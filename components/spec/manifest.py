"""The policy manifest: a Topology as a versioned JSON document, and back.

Playbooks take a node's section as extra vars; the compliance suite takes the whole
document as its expectation. Example::

    doc = to_manifest(topology)           # dict, JSON-serialisable, schema-valid
    same = from_manifest(json.loads(json.dumps(doc)))
    assert same == topology
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from importlib import resources
from typing import Any

import jsonschema

from .errors import SpecError
from .topology import Topology

SCHEMA_ID = "https://ringzero.dev/schemas/manifest-v1.json"
VERSION = 1


def to_manifest(topology: Topology) -> dict[str, Any]:
    body = _dump(topology)
    body.pop("allocations", None)
    return {"$schema": SCHEMA_ID, "kind": "ringzero.manifest", "version": VERSION, **body}


def from_data(data: dict[str, Any]) -> Topology:
    """Build a Topology from plain data with defaults allowed (stack config, Python dicts)."""
    return typing.cast(Topology, _load(Topology, data))


def from_manifest(doc: dict[str, Any]) -> Topology:
    """Validate `doc` against the schema, then rebuild (and so re-validate) every spec."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(document)"
        raise SpecError("Manifest", where, "document", e.instance, e.message)
    body = {k: v for k, v in doc.items() if k not in ("$schema", "kind", "version")}
    return typing.cast(Topology, _load(Topology, body))


def schema() -> dict[str, Any]:
    text = resources.files("ringzero").joinpath("schemas/manifest-v1.json").read_text()
    return typing.cast(dict[str, Any], json.loads(text))


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def _dump(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _dump(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [_dump(x) for x in obj]
    return obj


def _load(tp: Any, data: Any) -> Any:
    """Build `tp` from JSON data, following the dataclass field annotations."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        nested = [a for a in args if dataclasses.is_dataclass(a)]
        return _load(nested[0], data) if nested else data
    if origin is tuple:
        (item, *_rest) = typing.get_args(tp)
        return tuple(_load(item, x) for x in data)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        fields = [f.name for f in dataclasses.fields(tp) if f.init]
        if not isinstance(data, dict):
            raise SpecError(tp.__name__, "?", "(object)", data, "a mapping of " + ", ".join(fields))
        unknown = sorted(set(data) - set(fields))
        if unknown:
            name = str(data.get("name", data.get("node", "?")))
            raise SpecError(tp.__name__, name, unknown[0], data[unknown[0]], "the fields " + ", ".join(fields))
        kwargs = {
            f.name: _load(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.init and f.name in data
        }
        return tp(**kwargs)
    return data
