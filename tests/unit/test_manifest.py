"""The policy manifest: schema-valid JSON that loads back into equal specs."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from ringzero.spec import SpecError, from_manifest, to_manifest
from ringzero.spec.manifest import schema

from tests.fixtures import local_topology


def test_round_trip_through_json_is_identity() -> None:
    topology = local_topology()
    doc = json.loads(json.dumps(to_manifest(topology)))
    assert from_manifest(doc) == topology
    assert to_manifest(from_manifest(doc)) == doc


def test_manifest_validates_against_published_schema() -> None:
    doc = to_manifest(local_topology())
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.validate(doc, schema())
    assert doc["version"] == 1 and doc["kind"] == "ringzero.manifest"


def test_schema_rejects_structure_errors_with_location() -> None:
    doc = to_manifest(local_topology())
    bad = copy.deepcopy(doc)
    bad["vms"][0]["vcpus"] = "two"
    with pytest.raises(SpecError) as err:
        from_manifest(bad)
    assert "Manifest 'vms/0/vcpus'" in str(err.value) and "'two' is not of type 'integer'" in str(err.value)


def test_loading_revalidates_values() -> None:
    doc = to_manifest(local_topology())
    doc["nodes"][0]["slices"][0]["cpu_weight"] = 0
    with pytest.raises(SpecError, match=r"CgroupSlice 'web.slice': cpu_weight=0 is invalid"):
        from_manifest(doc)


def test_unknown_version_is_refused() -> None:
    doc = to_manifest(local_topology())
    doc["version"] = 2
    with pytest.raises(SpecError, match="version"):
        from_manifest(doc)
