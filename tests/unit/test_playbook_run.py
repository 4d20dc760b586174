"""PlaybookRun's provider against a node that does not answer (real ansible-runner, no guest)."""

from __future__ import annotations

from typing import Any

import pytest

from ringzero.keys import generate_ed25519
from ringzero.plan import node_plan
from ringzero.playbook import PlaybookRunProvider, plan_hash
from tests.fixtures import local_topology


def _props() -> dict[str, Any]:
    key = generate_ed25519("test")
    plan = node_plan(local_topology(), "vm1")
    return {
        "name": "vm1-policies", "playbook": "site.yml", "plan": plan, "content_hash": plan_hash(plan),
        "private_key": key["private_key"],
        # port 1 on loopback: nothing listens, the connection is refused at once
        "node": {"name": "vm1", "host": "127.0.0.1", "port": 1, "user": "root",
                 "known_hosts": "[127.0.0.1]:1 " + " ".join(key["public_key"].split()[:2])},
    }


def test_apply_failure_names_the_host_and_task() -> None:
    with pytest.raises(RuntimeError) as err:
        PlaybookRunProvider().create(_props())
    msg = str(err.value)
    assert msg.startswith("PlaybookRun 'vm1-policies' (apply) failed: "
                          "host vm1, task 'Ensure the node matches its plan'"), msg
    assert "Connection refused" in msg or "port 1" in msg, msg


def test_removal_from_a_node_that_is_gone_does_not_block_destroy() -> None:
    PlaybookRunProvider().delete("vm1:site.yml", _props())  # warns, does not raise


def test_no_change_when_plan_and_node_are_the_same() -> None:
    props = _props()
    olds = {**props, "applied_hash": props["content_hash"]}
    assert PlaybookRunProvider().diff("id", olds, props).changes is False
    moved = {**props, "node": {**props["node"], "port": 2}}
    assert PlaybookRunProvider().diff("id", olds, moved).changes is True
    drifted = {**olds, "applied_hash": "drift: file /etc/systemd/system/web.slice"}
    assert PlaybookRunProvider().diff("id", drifted, props).changes is True
