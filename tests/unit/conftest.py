"""Pulumi mocks for the unit tier: one Mocks class that records every resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ansible.module_utils
import pulumi
import pytest

# The node module imports its helpers as `ansible.module_utils.ringzero_*`; Ansible finds them in
# playbooks/module_utils beside the playbooks, and so do the unit tests that load the module.
ansible.module_utils.__path__.append(str(Path(__file__).resolve().parents[2] / "playbooks" / "module_utils"))


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(args)
        outs = dict(args.inputs)
        if args.typ == "pulumi-python:dynamic/ringzero:SshKeyPair":
            # SshKeyPair's provider never runs under mocks: stand in for its outputs.
            outs.update(private_key=f"PRIVATE-{args.name}", public_key=f"ssh-ed25519 AAAA {args.name}",
                        fingerprint=f"SHA256:{args.name}")
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


@pytest.fixture
def mocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RecordingMocks:
    # remote-host URIs write key files under $RINGZERO_CACHE/keys: keep the tests' fake ones out of ~/.cache
    monkeypatch.setenv("RINGZERO_CACHE", str(tmp_path / "cache"))
    m = RecordingMocks()
    pulumi.runtime.set_mocks(m, project="ringzero", stack="unit", preview=False)
    return m
