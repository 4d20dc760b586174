"""The policy manifest: schema-valid JSON that loads back into equal specs."""

from __future__ import annotations

import copy
import json
from typing import Any

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
    with pytest.raises(SpecError, match=r"CgroupSlice 'web-api.slice': cpu_weight=0 is invalid"):
        from_manifest(doc)


def test_unknown_version_is_refused() -> None:
    doc = to_manifest(local_topology())
    doc["version"] = 2
    with pytest.raises(SpecError, match="version"):
        from_manifest(doc)


def _with_unusual_values(doc: dict[str, Any]) -> dict[str, Any]:
    """The reference manifest plus adopted OS names and the values systemd takes as strings."""
    doc = copy.deepcopy(doc)
    node = next(n for n in doc["nodes"] if n["node"] == "vm1")
    node["services"].append({"name": "ssh.service", "exec_start": "/usr/sbin/sshd -D", "description": "",
                             "user": "root", "restart": "always", "adopt": True, "max_exposure": 9.5})
    node["apparmor"].append({"name": "usr.sbin.cupsd", "mode": "complain", "attach": None, "abstractions": ["base"],
                             "files": [], "capabilities": [], "network": [], "raw": None, "adopt": True,
                             "services": []})
    node["slices"][0].update(cpu_weight="idle", tasks_max="10%", memory_high="40%", memory_max="50%")
    return doc


def test_adopt_and_string_limits_round_trip() -> None:
    doc = _with_unusual_values(to_manifest(local_topology()))
    topology = from_manifest(doc)
    vm1 = next(n for n in topology.nodes if n.node == "vm1")
    assert [(s.adopt, s.max_exposure) for s in vm1.services if s.name == "ssh.service"] == [(True, 9.5)]
    assert [a.adopt for a in vm1.apparmor if a.name == "usr.sbin.cupsd"] == [True]
    assert vm1.slices[0].cpu_weight == "idle" and vm1.slices[0].tasks_max == "10%"
    again = json.loads(json.dumps(to_manifest(topology)))
    assert again == doc and from_manifest(again) == topology


def test_adopt_defaults_to_false_and_may_be_left_out() -> None:
    doc = to_manifest(local_topology())
    assert all(s["adopt"] is False for n in doc["nodes"] for s in n.get("services", []))
    assert all(a["adopt"] is False for n in doc["nodes"] for a in n["apparmor"])
    older = copy.deepcopy(doc)  # a manifest written before the field existed
    for n in older["nodes"]:
        for s in n.get("services", []) + n["apparmor"]:
            s.pop("adopt")
    assert from_manifest(older) == from_manifest(doc)


def test_schema_refuses_a_non_boolean_adopt() -> None:
    doc = _with_unusual_values(to_manifest(local_topology()))
    next(n for n in doc["nodes"] if n["node"] == "vm1")["services"][-1]["adopt"] = "yes"
    with pytest.raises(SpecError, match=r"Manifest 'nodes/0/services/\d+/adopt'.*'yes' is not of type 'boolean'"):
        from_manifest(doc)


def test_a_manifest_written_before_hosts_lost_ssh_still_loads() -> None:
    doc = to_manifest(local_topology())
    assert all("ssh" not in h for h in doc["hosts"])
    legacy = copy.deepcopy(doc)
    for h in legacy["hosts"]:
        h["ssh"] = None
    assert from_manifest(legacy) == from_manifest(doc)
    legacy["hosts"][0]["ssh"] = {"host": "127.0.0.1", "port": 22, "user": "root"}
    with pytest.raises(SpecError, match="hosts/0"):
        from_manifest(legacy)
