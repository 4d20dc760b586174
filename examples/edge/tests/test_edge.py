"""The edge example's unit tests: they run against the installed ringzero wheel, under mocks."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.types: list[str] = []
        self.inputs: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.types.append(args.typ)
        self.inputs[args.name] = args.inputs
        outs = dict(args.inputs)
        if args.typ == "pulumi-python:dynamic/ringzero:SshKeyPair":
            outs.update(private_key="PRIVATE", public_key=f"ssh-ed25519 AAAA {args.name}", fingerprint="SHA256:x")
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


@pytest.fixture(scope="module")
def mocks() -> Mocks:
    m = Mocks()
    pulumi.runtime.set_mocks(m, project="ringzero-edge-example", stack="test", preview=False)
    return m


def test_ringzero_is_the_installed_wheel() -> None:
    import ringzero

    location = Path(ringzero.__file__).resolve()
    assert "site-packages" in location.parts, location
    assert (location.parent / "templates" / "libvirt" / "domain.xml.j2").is_file()
    assert (location.parent / "playbooks").is_dir()
    assert (location.parent / "schemas" / "manifest-v1.json").is_file()


@pulumi.runtime.test
def test_edge_stack_declares_its_vm_and_policies(mocks: Mocks) -> pulumi.Output[Any]:
    program = runpy.run_path(str(Path(__file__).resolve().parent.parent / "__main__.py"), run_name="edge")

    def check(values: list[Any]) -> None:
        policies = values[-1]
        assert mocks.types.count("ringzero:index:VirtualMachine") == 1
        assert mocks.types.count("libvirt:index/domain:Domain") == 1
        # the VM's policies: one component that applies them all through one PlaybookRun
        assert mocks.types.count("ringzero:index:NodePolicies") == 1
        assert mocks.types.count("pulumi-python:dynamic/ringzero:PlaybookRun") == 1
        assert sorted(policies) == ["apparmor:edge-haproxy", "ebpf:execsnoop", "seccomp:proxy-no-ptrace",
                                    "slice:proxy.slice"], policies
        dom = mocks.inputs["edge-proxy-domain"]
        assert dom["type"] == "kvm" and dom["vcpu"] == 2 and dom["memory"] == 2048
        assert "hostfwd=tcp:127.0.0.1:2301-:22" in dom["xml"]["xslt"]

    deployed = program["deployed"]
    vm = deployed.vms["edge-proxy"]
    node = deployed.policies["edge-proxy"]
    return pulumi.Output.all(vm.domain.urn, vm.disk.urn, vm.seed.urn, node.urn, node.policies).apply(check)
