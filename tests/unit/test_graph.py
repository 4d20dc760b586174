"""The resource graph of the reference stack under mocks: which resources, parents, inputs."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections import Counter
from typing import Any

import pulumi
from pulumi.runtime import rpc

from ringzero.stack import deploy
from tests.fixtures import local_topology
from tests.unit.conftest import RecordingMocks

SECRET_SIG, SECRET_MARK = rpc._special_sig_key, rpc._special_secret_sig


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def _settle(outputs: list[pulumi.Output[Any]]) -> pulumi.Output[list[Any]]:
    return pulumi.Output.all(*outputs)


@pulumi.runtime.test
def test_reference_stack_graph(mocks: RecordingMocks) -> pulumi.Output[Any]:
    deployed = deploy(local_topology())

    def check(_: Any) -> None:
        types = Counter(r.typ for r in mocks.resources)
        assert types["ringzero:index:HypervisorHost"] == 2
        assert types["pulumi:providers:libvirt"] == 2
        assert types["ringzero:index:BaseImage"] == 2
        assert types["ringzero:index:VirtualMachine"] == 3
        assert types["libvirt:index/volume:Volume"] == 5  # a base per host + one overlay per VM
        assert types["libvirt:index/cloudInitDisk:CloudInitDisk"] == 3
        assert types["libvirt:index/domain:Domain"] == 3
        # a node's policies are one component that applies them (no decorative one per policy)
        assert types["ringzero:index:NodePolicies"] == 2
        for retired in ("CgroupSlice", "AppArmorProfile", "SeccompProfile", "EbpfAgent"):
            assert f"ringzero:index:{retired}" not in types, retired
        # the access key, a host key per VM, an SSH readiness wait per running VM with a port,
        # a PlaybookRun per node with policies (vm1, vm2) and one ComplianceCheck
        assert types["pulumi-python:dynamic/ringzero:SshKeyPair"] == 4
        assert types["pulumi-python:dynamic/ringzero:SshReady"] == 2
        assert types["pulumi-python:dynamic/ringzero:GuestLifecycle"] == 3  # one per VM
        assert types["pulumi-python:dynamic/ringzero:PlaybookRun"] == 2
        assert types["pulumi-python:dynamic/ringzero:ComplianceCheck"] == 1
        assert "pulumi-python:dynamic:Resource" not in types
        by_name = {r.name: r for r in mocks.resources}
        dom = by_name["vm1-domain"].inputs
        assert dom["type"] == "qemu" and dom["vcpu"] == 1 and dom["memory"] == 1024
        assert dom["name"] == "vm1" and dom["running"] is True
        assert dom["kernel"].endswith("/vmlinuz") and dom["initrd"].endswith("/initrd.img")
        assert dom["cmdlines"] == [{"root": "/dev/vda", "console": "ttyS0"}, {"_": "rw"}]
        assert "hostfwd=tcp:127.0.0.1:2201-:22" in dom["xml"]["xslt"]
        console = '<serial type="pty"><log file="/var/log/libvirt/qemu/vm1-console.log" append="on"/>'
        assert console in dom["xml"]["xslt"]
        disk = by_name["vm1-disk"].inputs
        assert disk["baseVolumeId"] == "local-debian-12-volume-id" and disk["format"] == "qcow2"
        assert by_name["local-debian-12-volume"].inputs["source"].endswith("/base.qcow2")
        assert by_name["local-libvirt"].inputs["uri"] == "qemu:///system"
        # every libvirt resource goes through its host's provider, never the default one
        for r in mocks.resources:
            if r.typ.startswith("libvirt:"):
                want = "vm2-libvirt-libvirt" if r.name.startswith(("nested1", "vm2-libvirt")) else "local-libvirt"
                assert r.provider and f"::{want}::" in r.provider, (r.name, r.provider)
        # the remote host's URI carries the key and the pinned host key (the provider is
        # configured from the state alone: plain destroy), so the whole URI is a secret
        remote = by_name["vm2-libvirt-libvirt"].inputs["uri"]
        assert remote[SECRET_SIG] == SECRET_MARK, remote
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(remote["value"]).query)
        assert remote["value"].startswith("qemu+ssh://root@127.0.0.1:2202/system?keydata="), remote
        assert _unb64(query["keydata"][0]) == "PRIVATE-access\n"  # the mocks' stand-in for the access key
        assert _unb64(query["hostkey"][0]) == "ssh-ed25519 AAAA" and query["sshauth"] == ["privkey"]
        assert "keyfile" not in query and "knownhosts" not in query
        # the nested VM's lifecycle reaches vm2's libvirtd with the same key and pinned host key
        life = by_name["nested1-lifecycle"].inputs
        assert life["host_uri"] == "qemu+ssh://root@127.0.0.1:2202/system" and life["domain"] == "nested1"
        assert life["private_key"][SECRET_SIG] == SECRET_MARK and life["known_hosts"].startswith("[127.0.0.1]:2202 ")
        assert by_name["vm1-lifecycle"].inputs.get("private_key") is None
        assert (dom["memory"], dom["vcpu"]) == (by_name["vm1-lifecycle"].inputs["memory_mib"],
                                                by_name["vm1-lifecycle"].inputs["vcpus"])
        nested = by_name["nested1-domain"].inputs
        assert nested["running"] is False and "kernel" not in nested
        # policies: one Ansible run per node, its plan from the manifest, its hash over plan + playbooks
        run = by_name["vm1-policies"].inputs
        assert run["plan"]["node"] == "vm1" and run["playbook"] == "site.yml"
        assert "/etc/systemd/system/web.slice" in run["plan"]["files"]
        assert run["node"]["port"] == 2201 and run["node"]["known_hosts"].startswith("[127.0.0.1]:2201 ")
        assert len(run["content_hash"]) == 64
        assert by_name["vm2-policies"].inputs["plan"]["packages"] == ["qemu-system-x86", "libvirt-daemon-system",
                                                                      "libvirt-clients"]
        check_in = by_name["compliance"].inputs
        assert [n["name"] for n in check_in["nodes"]] == ["vm1", "vm2"] and check_in["enforce"] is True
        assert '"kind": "ringzero.manifest"' in check_in["manifest"]
        assert check_in["waivers"] == [] and check_in["report_path"].endswith("reports/unit-compliance.xml")

    urns = [r.urn for vm in deployed.vms.values() for r in (vm, vm.domain, vm.seed, vm.disk, vm.lifecycle)]
    urns += [img.volume.urn for img in deployed.images.values()]
    urns += [vm.ready.urn for vm in deployed.vms.values() if vm.ready is not None]
    urns += [r.urn for r in deployed.runs.values()]
    assert deployed.compliance is not None
    urns += [deployed.compliance.urn]
    return _settle(urns).apply(check)


@pulumi.runtime.test
def test_children_are_parented_to_their_component(mocks: RecordingMocks) -> pulumi.Output[Any]:
    deployed = deploy(local_topology())
    vm = deployed.vms["vm1"]
    node = deployed.policies["vm1"]

    def check(urns: list[str]) -> None:
        disk, seed, domain, policies, run = urns
        for urn in (disk, seed, domain):
            assert "ringzero:index:VirtualMachine$libvirt:index/" in urn, urn
        assert policies.endswith("::ringzero:index:VirtualMachine$ringzero:index:NodePolicies::vm1"), policies
        # (the mocks name a parent's own type only; the engine gives the chain, VirtualMachine$NodePolicies$…)
        assert run.endswith("ringzero:index:NodePolicies$pulumi-python:dynamic/ringzero:PlaybookRun::vm1-policies"), run

    run = deployed.runs["vm1"]
    assert node.run is run
    return _settle([vm.disk.urn, vm.seed.urn, vm.domain.urn, node.urn, run.urn]).apply(check)


@pulumi.runtime.test
def test_cloud_init_user_data_is_secret(mocks: RecordingMocks) -> pulumi.Output[Any]:
    deployed = deploy(local_topology())
    seed = deployed.vms["vm1"].seed

    async def is_secret() -> bool:
        return await seed.user_data.is_secret()

    def check(secret: bool) -> None:
        assert secret, "user-data carries the host private key: it must be a secret"

    return pulumi.Output.from_input(is_secret()).apply(check)


@pulumi.runtime.test
def test_node_policies_expose_what_their_run_applied(mocks: RecordingMocks) -> pulumi.Output[Any]:
    """What a node's component exports comes from its PlaybookRun's outputs, with the policies
    it applied named as their checks name them; the stack's `policies` output reads it."""
    from ringzero.checks import expectations

    topology = local_topology()
    deployed = deploy(topology)
    outputs = deployed.policy_outputs()
    subjects = {n: {c.subject for c in expectations(topology, {n})} for n in ("vm1", "vm2")}

    def check(values: list[Any]) -> None:
        vm1, vm2, changed = values
        assert set(vm1) == subjects["vm1"] and "slice:web.slice" in vm1 and "ebpf:execsnoop" in vm1, vm1
        assert vm2 == ["host:kvm"] and set(vm2) == subjects["vm2"]
        assert changed is None  # under mocks the run echoes its inputs: nothing applied

    assert set(outputs) == {"vm1", "vm2"} and set(outputs["vm1"]) == {
        "policies", "changed", "changes", "reboot_required", "kept", "drift", "landlock_dropped", "exposure"}
    # scored offline where systemd-analyze is installed (tests/validate/test_exposure.py scores for real)
    assert set(outputs["vm1"]["exposure"]) <= {s.name for s in topology.nodes[0].services}
    return _settle([outputs["vm1"]["policies"], outputs["vm2"]["policies"], outputs["vm1"]["changed"]]).apply(check)


@pulumi.runtime.test
def test_waivers_from_stack_config_reach_the_compliance_check(mocks: RecordingMocks) -> pulumi.Output[Any]:
    from ringzero.stack import waivers_from_config

    waiver = {"control": "slice:web.slice::memory.max", "hosts": ["vm1"], "reason": "raised during the migration",
              "expires": "2027-01-31"}
    assert waivers_from_config(None) is None and waivers_from_config("waivers.yaml") == "waivers.yaml"
    assert waivers_from_config(json.dumps([waiver])) == [waiver]
    deployed = deploy(local_topology(), waivers=waivers_from_config(json.dumps([waiver])))
    assert deployed.compliance is not None

    def check(_: Any) -> None:
        (inputs,) = [r.inputs for r in mocks.resources if r.name == "compliance"]
        assert inputs["waivers"] == [waiver]

    return deployed.compliance.urn.apply(check)
