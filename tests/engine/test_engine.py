"""The real Pulumi engine (CLI, Python language host, libvirt plugin), offline."""

from __future__ import annotations

import copy
import json
import subprocess
from importlib import metadata
from pathlib import Path

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
        "ringzero:index:CgroupSlice",
        "ringzero:index:AppArmorProfile",
        "ringzero:index:SeccompProfile",
        "ringzero:index:EbpfAgent",
    }
    assert expected <= types, expected - types
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
    assert "CgroupSlice 'web.slice': cpu_weight=0 is invalid; allowed: an integer from 1 to 10000" in out
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
