"""The real Pulumi engine (CLI, Python language host, libvirt plugin), offline."""

from __future__ import annotations

import copy
import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from tests.engine.conftest import ROOT, TOOLCHAIN, make_project, reference_config


def _versions_env() -> dict[str, str]:
    lines = (ROOT / "tools" / "pulumi" / "versions.env").read_text().splitlines()
    return dict(ln.split("=", 1) for ln in lines if ln and not ln.startswith("#"))


def test_toolchain_is_the_pinned_one() -> None:
    """The CLI is the pin in versions.env and no older than the Python SDK it drives."""
    pins = _versions_env()
    out = subprocess.run([str(TOOLCHAIN / "pulumi"), "version"], capture_output=True, text=True, check=True)
    cli = out.stdout.strip().removeprefix("v")
    assert cli == pins["PULUMI_VERSION"]
    sdk = metadata.version("pulumi")
    assert sdk == pins["PULUMI_PYTHON_SDK_VERSION"]
    assert tuple(map(int, cli.split("."))) >= tuple(map(int, sdk.split(".")))
    assert metadata.version("pulumi_libvirt") == pins["PULUMI_LIBVIRT_VERSION"]


def test_reference_stack_preview_lists_every_resource_type(tmp_path: Path) -> None:
    project = make_project(tmp_path, (ROOT / "__main__.py").read_text(), reference_config(), name="ringzero")
    steps = project.preview_steps()
    types = {s["newState"]["type"] for s in steps if s.get("newState")}
    expected = {
        "pulumi:providers:libvirt",
        "libvirt:index/volume:Volume",
        "libvirt:index/cloudInitDisk:CloudInitDisk",
        "libvirt:index/domain:Domain",
        "pulumi-python:dynamic/ringzero:SshKeyPair",
        "pulumi-python:dynamic/ringzero:PlaybookRun",
        "pulumi-python:dynamic/ringzero:ComplianceCheck",
        "ringzero:index:HypervisorHost",
        "ringzero:index:BaseImage",
        "ringzero:index:VirtualMachine",
        "ringzero:index:NodePolicies",
    }
    assert expected <= types, expected - types
    # no resource that changes nothing on a node (the decorative per-policy components are gone)
    assert not types & {f"ringzero:index:{t}" for t in ("CgroupSlice", "AppArmorProfile", "SeccompProfile",
                                                         "EbpfAgent")}, types
    # what preview shows under each VM: its policies, applied by one PlaybookRun
    urns = {s["urn"].split("::", 2)[2] for s in steps}
    for node in ("vm1", "vm2"):
        assert f"ringzero:index:VirtualMachine$ringzero:index:NodePolicies::{node}" in urns, urns
        assert (f"ringzero:index:VirtualMachine$ringzero:index:NodePolicies$pulumi-python:dynamic/ringzero:PlaybookRun"
                f"::{node}-policies") in urns, urns
    assert "pulumi-python:dynamic:Resource" not in types
    # the libvirt plugin comes from PULUMI_HOME: no "using pulumi-resource-libvirt from $PATH"
    res = project.pulumi("preview")
    assert "from $PATH" not in res.stdout + res.stderr, res.stdout + res.stderr
    assert all(s["op"] == "create" for s in steps if s["op"] != "same")


def test_bad_input_fails_preview_with_the_message(tmp_path: Path) -> None:
    config = copy.deepcopy(reference_config())
    config["ringzero:nodes"][0]["slices"][0]["cpu_weight"] = 0
    project = make_project(tmp_path, (ROOT / "__main__.py").read_text(), config, name="ringzero")
    res = project.pulumi("preview", check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "CgroupSlice 'web-api.slice': cpu_weight=0 is invalid; allowed: an integer from 1 to 10000" in out
    assert "Traceback" not in out
    # nothing was created: the stack's state holds no resources
    state = json.loads(project.pulumi("stack", "export").stdout)
    assert not state["deployment"].get("resources")


DYNAMIC_ONLY = '''
import pulumi
from ringzero.keys import SshKeyPair

keys = [SshKeyPair(f"key{i}", comment=f"engine-test-{i}") for i in range(3)]
pulumi.export("fingerprints", [k.fingerprint for k in keys])
pulumi.export("public_keys", [k.public_key for k in keys])
'''


def test_dynamic_resources_up_noop_destroy(tmp_path: Path) -> None:
    project = make_project(tmp_path, DYNAMIC_ONLY)
    project.pulumi("up", "--yes")
    outputs = json.loads(project.pulumi("stack", "output", "--json").stdout)
    assert len(set(outputs["fingerprints"])) == 3
    assert all(k.startswith("ssh-ed25519 ") for k in outputs["public_keys"])

    # a second `up` changes nothing, and the keys are the same keys
    noop = project.pulumi("preview", "--expect-no-changes", "--json")
    assert {s["op"] for s in json.loads(noop.stdout)["steps"]} == {"same"}
    project.pulumi("up", "--yes", "--expect-no-changes")
    assert json.loads(project.pulumi("stack", "output", "--json").stdout) == outputs

    # the private keys are secrets: ciphertext in state, never the PEM text
    state = project.pulumi("stack", "export").stdout
    assert "BEGIN OPENSSH PRIVATE KEY" not in state
    assert state.count('"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"') >= 3

    project.pulumi("destroy", "--yes")
    after = json.loads(project.pulumi("stack", "export").stdout)
    assert not after["deployment"].get("resources")


OLD_TYPE = '''
import pulumi
import pulumi.dynamic as dyn
from ringzero.keys import SshKeyPairProvider


class Key(dyn.Resource):  # as SshKeyPair was declared before its type had a name
    def __init__(self, name: str, comment: str) -> None:
        super().__init__(SshKeyPairProvider(), name,
                         {"comment": comment, "private_key": None, "public_key": None, "fingerprint": None},
                         pulumi.ResourceOptions(additional_secret_outputs=["private_key"]))


keys = [Key(f"key{i}", comment=f"engine-test-{i}") for i in range(3)]
pulumi.export("fingerprints", [k.fingerprint for k in keys])
pulumi.export("public_keys", [k.public_key for k in keys])
'''


def test_named_dynamic_types_update_old_stacks_in_place(tmp_path: Path) -> None:
    """A stack written with `pulumi-python:dynamic:Resource` moves to the named types through
    their aliases: nothing is replaced, the keys stay the same keys."""
    project = make_project(tmp_path, OLD_TYPE)
    project.pulumi("up", "--yes")
    before = json.loads(project.pulumi("stack", "output", "--json").stdout)
    old = json.loads(project.pulumi("stack", "export").stdout)["deployment"]["resources"]
    assert sum(r["type"] == "pulumi-python:dynamic:Resource" for r in old) == 3

    (project.dir / "__main__.py").write_text(DYNAMIC_ONLY)
    steps = project.preview_steps()
    assert {s["op"] for s in steps} <= {"same", "update"}, [(s["op"], s["urn"]) for s in steps]
    project.pulumi("up", "--yes")
    assert json.loads(project.pulumi("stack", "output", "--json").stdout) == before
    new = json.loads(project.pulumi("stack", "export").stdout)["deployment"]["resources"]
    assert sorted(r["type"] for r in new if r["type"].startswith("pulumi-python")) == \
        ["pulumi-python:dynamic/ringzero:SshKeyPair"] * 3
    project.pulumi("destroy", "--yes")


# A stack as ringzero wrote it before NodePolicies: a decorative component per policy and the
# PlaybookRun directly under the VM (and, in the oldest stacks, both dynamic resources under the
# unnamed type). The dynamic resources are stand-ins with the same types, names, parents and
# inputs, whose provider records what it is asked to do instead of running Ansible or SSH.
UPGRADE_COMMON = '''
import json
from pathlib import Path

import pytest

import pulumi
import pulumi.dynamic as dyn

from ringzero.plan import policies_plan
from ringzero.playbook import PlaybookRun
from ringzero.spec import AppArmorProfileSpec, HostSpec, NodePolicies, SliceSpec

LOG = str(Path.cwd() / "provider.log")
SPEC = NodePolicies("vm1", slices=(SliceSpec("web.slice", cpu_weight=200),),
                    apparmor=(AppArmorProfileSpec("ringzero-demo"),))
PLAN = policies_plan(SPEC, HostSpec("vm1"))
CONN = {"name": "vm1", "host": "127.0.0.1", "port": 1, "user": "root",
        "known_hosts": "[127.0.0.1]:1 ssh-ed25519 AAAA", "instance": "vm1-disk-id"}
REPORT = str(Path.cwd() / "reports" / "compliance.xml")
vm = pulumi.ComponentResource("ringzero:index:VirtualMachine", "vm1")
vm.register_outputs({})
'''

UPGRADE_OLD = UPGRADE_COMMON + '''

def log(line):
    with open(LOG, "a") as f:
        f.write(line + "\\n")


class Recorder(dyn.ResourceProvider):
    def create(self, props):
        log(f"create {props['name']}")
        done = {"applied_hash": props.get("content_hash"), "apply_id": "apply-1", "changed": 1, "changes": ["w"],
                "seconds": 1.0, "reboot_required": False, "reboot_notes": [], "kept": [], "drift": []}
        if props["name"] == "compliance":
            done = {"passed": 3, "failed": 0, "errors": 0, "failures": []}
        return dyn.CreateResult(id_=props["name"], outs={**props, **done})

    def update(self, _id, _olds, news):
        log(f"update {news['name']}")
        return dyn.UpdateResult(outs=news)

    def delete(self, _id, props):
        log(f"delete {props['name']}")


NAMED = __NAMED__


class Recorded(dyn.Resource):
    """Whatever a subclass registers, with the Recorder as its provider."""

    def __init__(self, _provider, name, props, opts=None):
        super().__init__(Recorder(), name, props, opts)


# the real PlaybookRun's inputs (its type as the old stack had it), with the Recorder for provider
class OldRun(PlaybookRun, Recorded, **({"module": "ringzero", "name": "PlaybookRun"} if NAMED else {})):
    pass


class OldCheck(dyn.Resource, **({"module": "ringzero", "name": "ComplianceCheck"} if NAMED else {})):
    def __init__(self, name, applied, opts):
        super().__init__(Recorder(), name, {
            "name": name, "manifest": "{}", "nodes": [CONN], "private_key": pulumi.Output.secret("k"),
            "applied": applied, "enforce": True, "report_path": REPORT,
            "passed": None, "failed": None, "errors": None, "failures": None}, pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["private_key"])))


decorative = []
for typ, name in (("CgroupSlice", "vm1-web.slice"), ("AppArmorProfile", "vm1-aa-ringzero-demo")):
    c = pulumi.ComponentResource(f"ringzero:index:{typ}", name, None, pulumi.ResourceOptions(parent=vm))
    c.register_outputs({"node": "vm1", "files": [], "contentHash": "x"})
    decorative.append(c)
run = OldRun("vm1-policies", node=CONN, private_key=pulumi.Output.secret("k"), plan=PLAN,
             opts=pulumi.ResourceOptions(parent=vm, depends_on=decorative))
check = OldCheck("compliance", [run.apply_id], pulumi.ResourceOptions(depends_on=[run]))
'''

UPGRADE_NEW = UPGRADE_COMMON + '''
from ringzero.compliance import ComplianceCheck
from ringzero.node import NodePolicies as NodePoliciesComponent

node = NodePoliciesComponent("vm1", SPEC, plan=PLAN, connection=CONN, private_key=pulumi.Output.secret("k"),
                             opts=pulumi.ResourceOptions(parent=vm))
check = ComplianceCheck("compliance", manifest="{}", nodes=[CONN], private_key=pulumi.Output.secret("k"),
                        applied=[node.apply_id], report_path=REPORT, opts=pulumi.ResourceOptions(depends_on=[node.run]))
pulumi.export("policies", {"policies": node.policies, "changed": node.changed, "kept": node.kept})
pulumi.export("passed", check.passed)
'''


@pytest.mark.parametrize("named", [True, False], ids=["named-types", "unnamed-dynamic-types"])
def test_a_stack_of_decorative_policy_components_moves_to_node_policies_in_place(tmp_path: Path, named: bool) -> None:
    """Upgrading a stack written before NodePolicies: the PlaybookRun moves under the node's
    NodePolicies and the ComplianceCheck stays, both in place (their real providers only diff:
    a replacement or an update would run Ansible and SSH against a node that is not there);
    only the retired decorative components are deleted, and no provider is asked to do anything."""
    project = make_project(tmp_path, UPGRADE_OLD.replace("__NAMED__", str(named)))
    project.pulumi("up", "--yes")
    log = project.dir / "provider.log"
    assert log.read_text().splitlines() == ["create vm1-policies", "create compliance"]
    old = {r["urn"]: r for r in json.loads(project.pulumi("stack", "export").stdout)["deployment"]["resources"]}
    old_run = next(r for u, r in old.items() if u.endswith("::vm1-policies"))
    assert "ringzero:index:VirtualMachine$pulumi-python:dynamic" in old_run["urn"]

    (project.dir / "__main__.py").write_text(UPGRADE_NEW)
    steps = project.preview_steps()
    ops = {s["urn"].split("::", 2)[2]: s["op"] for s in steps}
    assert set(ops.values()) <= {"same", "create", "delete"}, ops
    assert {u for u, op in ops.items() if op == "create"} == {
        "ringzero:index:VirtualMachine$ringzero:index:NodePolicies::vm1"}, ops
    assert {u for u, op in ops.items() if op == "delete"} == {
        "ringzero:index:VirtualMachine$ringzero:index:CgroupSlice::vm1-web.slice",
        "ringzero:index:VirtualMachine$ringzero:index:AppArmorProfile::vm1-aa-ringzero-demo"}, ops
    run_urn = ("ringzero:index:VirtualMachine$ringzero:index:NodePolicies$pulumi-python:dynamic/ringzero:PlaybookRun"
               "::vm1-policies")
    # (preview lists a resource that stays as it is under no step, or as `same`)
    assert ops.get(run_urn, "same") == "same" and ops.get(
        "pulumi-python:dynamic/ringzero:ComplianceCheck::compliance", "same") == "same", ops

    project.pulumi("up", "--yes")
    assert log.read_text().splitlines() == ["create vm1-policies", "create compliance"], "a provider was called"
    outputs = json.loads(project.pulumi("stack", "output", "--json").stdout)
    # the component's outputs are the carried-over run's: what the first apply did
    assert outputs == {"policies": {"policies": ["slice:web.slice", "apparmor:ringzero-demo"], "changed": 1,
                                    "kept": []}, "passed": 3}
    new = {r["urn"]: r for r in json.loads(project.pulumi("stack", "export").stdout)["deployment"]["resources"]}
    run = next(r for u, r in new.items() if u.endswith("::vm1-policies"))
    assert run["urn"].endswith(run_urn) and run["id"] == old_run["id"]
    assert run["outputs"]["apply_id"] == old_run["outputs"]["apply_id"] == "apply-1"
    assert not [u for u in new if "CgroupSlice" in u or "AppArmorProfile" in u]
    project.pulumi("preview", "--expect-no-changes")


COMPLIANCE_ONLY = '''
import pulumi
from ringzero.compliance import ComplianceCheck

NODE = {"name": "vm1", "host": "127.0.0.1", "port": 1, "user": "root",
        "known_hosts": "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnly4ThisTestxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
check = ComplianceCheck("compliance", manifest=__MANIFEST__, nodes=[NODE], private_key=pulumi.Output.secret("k"),
                        enforce=__ENFORCE__, report_path=__REPORT__,
                        waivers=[{"control": "RZ-NONE-*", "hosts": ["vm1"], "reason": "matches nothing (engine tier)",
                                  "expires": "2999-12-31"}])
pulumi.export("compliance", {"passed": check.passed, "errors": check.errors, "failures": check.failures,
                             "notes": check.notes, "report": check.report_path, "sarif": check.sarif_path})
'''


def test_compliance_check_runs_the_engine_inside_the_dynamic_provider(tmp_path: Path) -> None:
    """The engine runs in Pulumi's dynamic-provider process (the provider unpickled there, its
    gRPC threads around it): a node that cannot be reached makes every one of its checks an
    error, fails the update when enforced (naming the node), and is in the outputs and both
    reports when not; an unused waiver is a note."""
    import jsonschema

    from ringzero.checks import expectations
    from ringzero.spec import to_manifest
    from tests.fixtures import junit_statuses, local_topology
    from tests.sarif_rules import github_sarif_problems

    topology = local_topology()
    report = tmp_path / "reports" / "c.xml"

    def program(enforce: bool) -> str:
        return (COMPLIANCE_ONLY.replace("__MANIFEST__", repr(json.dumps(to_manifest(topology))))
                .replace("__ENFORCE__", str(enforce)).replace("__REPORT__", repr(str(report))))

    project = make_project(tmp_path, program(True))
    res = project.pulumi("up", "--yes", check=False)
    out = res.stdout + res.stderr
    n = len(expectations(topology, {"vm1"}))
    assert res.returncode != 0 and f"ComplianceCheck 'compliance': 0 failed, {n} errors of {n} checks" in out, out
    assert "vm1: cannot connect over SSH to ssh://root@127.0.0.1:1" in out, out

    (project.dir / "__main__.py").write_text(program(False))
    project.pulumi("up", "--yes")
    outs = json.loads(project.pulumi("stack", "output", "--json").stdout)["compliance"]
    assert outs["passed"] == 0 and outs["errors"] == n, outs
    assert len(outs["failures"]) == 1 and outs["failures"][0].startswith(
        "vm1: cannot connect over SSH to ssh://root@127.0.0.1:1"), outs["failures"]
    assert outs["notes"] == ["waiver #1 (RZ-NONE-* on vm1) until 2999-12-31: matches nothing (engine tier): "
                             "matched no check"], outs["notes"]
    assert outs["report"] == str(report) and outs["sarif"] == str(report.with_suffix(".sarif"))
    assert set(junit_statuses(report).values()) == {"error"} and len(junit_statuses(report)) == n
    doc = json.loads(report.with_suffix(".sarif").read_text())
    jsonschema.validate(doc, json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text()))
    assert github_sarif_problems(doc) == [] and len(doc["runs"][0]["results"]) == n
    assert not doc["runs"][0]["invocations"][0]["executionSuccessful"]
