"""The node plan's schema and the manifest's, generated from the code: the written files are
what `ringzero.schema` generates, real plans validate, and the node module's stdlib validator
refuses a malformed plan naming the field path, as jsonschema would refuse it."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ansible.module_utils.testing import patch_module_args

from ringzero import schema
from ringzero.plan import FEATURES, node_plan, policies_plan
from ringzero.plan_schema import NodePlan
from ringzero.spec import HostSpec, NodePolicies, SliceSpec, to_manifest
from tests.fixtures import ROOT, local_topology
from tests.node_module import load_node_module

sys.path.insert(0, str(ROOT / "playbooks" / "module_utils"))
import ringzero_plan as node_validator


def _three_slices() -> dict[str, Any]:
    policies = NodePolicies("n1", slices=tuple(SliceSpec(f"rz{i}.slice", cpu_weight=100 + i) for i in range(3)))
    return copy.deepcopy(dict(policies_plan(policies, HostSpec("n1"))))


@pytest.mark.parametrize("path", sorted(schema.outputs(), key=str), ids=lambda p: p.name)
def test_written_schemas_are_what_the_generator_gives(path: Path) -> None:
    assert path.read_text() == schema.outputs()[path], f"{path} is out of date: run `python -m ringzero.schema`"


def test_every_refinement_names_a_field_of_its_class() -> None:
    for cls, name in [*schema.REFINEMENTS, *schema.ADDED_IN_V1]:
        assert name in {f.name for f in dataclasses.fields(cls) if f.init}, (cls.__name__, name)


def test_the_manifest_schema_covers_every_spec_field_both_ways() -> None:
    doc = schema.manifest_schema()
    top = local_topology()
    for cls in {type(x) for x in (*top.hosts, *top.images, *top.vms, *top.nodes)} | {SliceSpec}:
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        assert set(doc["$defs"][schema.def_name(cls)]["properties"]) == fields, cls.__name__


def test_manifests_and_plans_validate_against_the_generated_schemas() -> None:
    manifest = json.loads((ROOT / "components" / "schemas" / "manifest-v1.json").read_text())
    jsonschema.Draft202012Validator(manifest).validate(json.loads(json.dumps(to_manifest(local_topology()))))
    plan_doc = json.loads((ROOT / "components" / "schemas" / "plan-v1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(plan_doc)
    for node in ("vm1", "vm2"):
        plan = json.loads(json.dumps(node_plan(local_topology(), node)))
        jsonschema.Draft202012Validator(plan_doc).validate(plan)
        assert node_validator.plan_errors(plan) == []


def test_a_plan_through_the_engines_struct_is_valid_again_once_its_integers_are_restored() -> None:
    """A dynamic resource's inputs travel as protobuf Struct, where every number is a double:
    vm1's plan (Landlock's `needs` are ABI numbers) comes back with floats that the node's
    schema check refuses; PlaybookRun restores them before the plan leaves for the node."""
    from google.protobuf import json_format, struct_pb2

    from ringzero.playbook import integers_restored

    plan = json.loads(json.dumps(node_plan(local_topology(), "vm1")))
    assert plan["landlock"], "the reference vm1 declares a Landlock ruleset"
    struct = struct_pb2.Struct()
    struct.update(plan)
    through = json_format.MessageToDict(struct)
    assert isinstance(through["landlock"][0]["needs"]["execute"], float)
    assert any("expected integer, got float" in e for e in node_validator.plan_errors(through))
    assert integers_restored(through) == plan
    assert node_validator.plan_errors(integers_restored(through)) == []


def test_the_node_carries_the_same_schema() -> None:
    assert schema.plan_schema_doc() == node_validator.SCHEMA
    assert set(NodePlan.__annotations__) - {"owner", "landlock"} == set(node_validator.SCHEMA["required"])
    assert "owner" in node_validator.SCHEMA["properties"]


def _broken(edit: str) -> dict[str, Any]:
    plan = _three_slices()
    some_file = sorted(plan["files"])[0]
    if edit == "properties":
        plan["slices"][2]["properties"] = [["CPUWeight", "102"]]
    elif edit == "missing":
        del plan["units"]
    elif edit == "unknown":
        plan["slices"][0]["Properties"] = {}
    elif edit == "feature":
        plan["files"][some_file]["feature"] = "cgroups"
    elif edit == "content":
        plan["files"][some_file]["content"] = None
    elif edit == "bool":
        plan["slices"][1]["expect"]["CPUWeight"] = 101
    elif edit == "files":
        plan["files"] = [some_file]
    return plan


REFUSED = {
    "properties": "plan.slices[2].properties: expected object, got list",
    "missing": "plan: missing field 'units'",
    "unknown": "plan.slices[0]: unknown field 'Properties' (allowed: unit, path, feature, properties, expect)",
    # every feature the registry knows (kinds added by other branches extend it)
    "feature": "plan.files['/etc/systemd/system/rz0.slice'].feature: expected one of "
               f"{', '.join(FEATURES)}, got 'cgroups'",
    "content": "plan.files['/etc/systemd/system/rz0.slice'].content: expected string, got NoneType",
    "bool": "plan.slices[1].expect.CPUWeight: expected string, got int",
    "files": "plan.files: expected object, got list",
}


@pytest.mark.parametrize("edit", sorted(REFUSED))
def test_a_malformed_plan_is_refused_naming_the_field(edit: str) -> None:
    plan = _broken(edit)
    assert node_validator.plan_errors(plan) == [REFUSED[edit]]
    doc = json.loads((ROOT / "components" / "schemas" / "plan-v1.json").read_text())
    assert not jsonschema.Draft202012Validator(doc).is_valid(plan), "jsonschema agrees"


def test_booleans_are_not_integers_and_errors_are_bounded() -> None:
    plan = _three_slices()
    plan["units"] = [{"unit": 1}] * 50
    errors = node_validator.plan_errors(plan, limit=5)
    assert len(errors) == 5 and errors[0].startswith("plan.units[0]: missing field 'owned'")


def test_the_module_refuses_a_malformed_plan_before_touching_the_node(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    mod = load_node_module()
    out = io.StringIO()
    args = {"plan": _broken("properties"), "state_dir": str(state_dir)}
    with patch_module_args(args), redirect_stdout(out), pytest.raises(SystemExit) as ended:
        mod.main()
    result = json.loads(out.getvalue())
    assert ended.value.code == 1 and result["failed"]
    assert "plan.slices[2].properties: expected object, got list" in result["msg"]
    assert not state_dir.exists(), "no ledger, no lock: nothing touched"
