"""The policy manifest: a Topology as a versioned JSON document, and back.

Playbooks take a node's section as extra vars; the compliance suite takes the whole
document as its expectation. Example::

    doc = to_manifest(topology)           # dict, JSON-serialisable, schema-valid
    same = from_manifest(json.loads(json.dumps(doc)))
    assert same == topology
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from importlib import resources
from typing import TYPE_CHECKING, Any

from .errors import SpecError
from .topology import Topology

if TYPE_CHECKING:
    import jsonschema

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
    doc = _without_retired_fields(doc)
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(document)"
        raise SpecError("Manifest", where, "document", e.instance, e.message)
    body = {k: v for k, v in doc.items() if k not in ("$schema", "kind", "version")}
    return typing.cast(Topology, _load(Topology, body))


def _without_retired_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """Manifests written before hosts lost their unused `ssh` field carry `"ssh": null` for every
    host: still read. A non-null value was never acted on either, and is refused by the schema."""
    hosts = doc.get("hosts")
    if not isinstance(hosts, list) or not any(isinstance(h, dict) and "ssh" in h and h["ssh"] is None for h in hosts):
        return doc
    return {**doc, "hosts": [{k: v for k, v in h.items() if not (k == "ssh" and v is None)}
                             if isinstance(h, dict) else h for h in hosts]}


def schema() -> dict[str, Any]:
    text = resources.files("ringzero").joinpath("schemas/manifest-v1.json").read_text()
    return typing.cast(dict[str, Any], json.loads(text))


def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema  # here: a program run (from_data) never validates a document, and the import is 80 ms

    return jsonschema.Draft202012Validator(schema())


def _dump(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _dump(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [_dump(x) for x in obj]
    return obj


def _load(tp: Any, data: Any, where: tuple[str, str, str] = ("Topology", "?", "(document)")) -> Any:
    """Build `tp` from JSON data, following the dataclass field annotations.

    Data of the wrong shape (a null list, a string where a list goes, an object where a number
    goes) is a SpecError naming the resource and field, never a TypeError from deep inside:
    stack config and Python dicts reach here without the manifest schema in front.
    """
    kind, name, field = where
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            if type(None) in typing.get_args(tp):
                return None
            raise SpecError(kind, name, field, data, _describe(tp))
        nested = [a for a in args if dataclasses.is_dataclass(a)]
        if nested:
            return _load(nested[0], data, where)
        if not any(_is_a(a, data) for a in args):
            raise SpecError(kind, name, field, data, _describe(tp))
        return data
    if origin is tuple:
        (item, *_rest) = typing.get_args(tp)
        if not isinstance(data, list | tuple):
            raise SpecError(kind, name, field, data, _describe(tp))
        return tuple(_load(item, x, (kind, name, f"{field}[{i}]")) for i, x in enumerate(data))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = _field_types(tp)
        fields = [f.name for f in dataclasses.fields(tp) if f.init]
        if not isinstance(data, dict):
            raise SpecError(kind, name, field, data, f"a mapping ({tp.__name__}) of " + ", ".join(fields))
        unknown = sorted(set(data) - set(fields), key=str)
        own = str(data.get("name", data.get("node", "?")))
        if unknown:
            raise SpecError(tp.__name__, own, str(unknown[0]), data[unknown[0]], "the fields " + ", ".join(fields))
        kwargs = {
            f.name: _load(hints[f.name], data[f.name], (tp.__name__, own, f.name))
            for f in dataclasses.fields(tp)
            if f.init and f.name in data
        }
        return tp(**kwargs)
    if not _is_a(tp, data):
        raise SpecError(kind, name, field, data, _describe(tp))
    return data


@functools.cache
def _field_types(tp: type) -> dict[str, Any]:
    """A spec class's resolved field annotations. Resolving evaluates the annotation strings
    (`from __future__ import annotations`) into new Union objects each time: once per class
    and process, not once per loaded object (a program run loads ~190 objects: ~40 ms)."""
    return typing.get_type_hints(tp)


def _is_a(tp: Any, data: Any) -> bool:
    """Whether plain JSON data fits a scalar annotation (bool is not an int here)."""
    if tp is bool:
        return isinstance(data, bool)
    if tp is int:
        return isinstance(data, int) and not isinstance(data, bool)
    if tp is float:
        return isinstance(data, int | float) and not isinstance(data, bool)
    if tp is str:
        return isinstance(data, str)
    if typing.get_origin(tp) is tuple:
        return isinstance(data, list | tuple)
    return True


def _describe(tp: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "a list"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return names.get(tp, str(tp))
