"""Where a declaration comes from for `ringzero manifest|render|check`: a manifest file, a
stack's outputs, or a Pulumi program run under mocks (nothing is created, no engine needed).

    topology = from_program(Path("__main__.py"), config=Path("Pulumi.local.yaml"))
    topology = from_stack("local")          # `pulumi stack output manifest`
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .spec import SpecError, Topology, from_manifest


class DeclarationError(ValueError):
    """The declaration could not be read (a usage or input error, exit code 2)."""


def from_manifest_file(path: str | Path) -> Topology:
    try:
        return from_manifest(json.loads(Path(path).read_text()))
    except OSError as e:
        raise DeclarationError(f"manifest {path}: cannot read: {e.strerror}") from None
    except (ValueError, SpecError) as e:
        raise DeclarationError(f"manifest {path}: {e}") from None
    except RecursionError:
        raise DeclarationError(f"manifest {path}: nested too deeply to be a ringzero manifest") from None


def from_stack(stack: str) -> Topology:
    """The `manifest` output of a deployed stack (the reference stack exports it)."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise DeclarationError("--stack needs the pulumi CLI on PATH (with the stack's backend settings)")
    res = subprocess.run([pulumi, "stack", "output", "manifest", "--stack", stack, "--non-interactive"],
                         capture_output=True, text=True, timeout=300, check=False)
    if res.returncode != 0 or not res.stdout.strip():
        raise DeclarationError(f"stack {stack}: no `manifest` output ({res.stderr.strip() or 'empty output'}); "
                               "deploy it with ringzero.stack.deploy and export deployed.manifest_json()")
    try:
        return from_manifest(json.loads(res.stdout))
    except (ValueError, SpecError) as e:
        raise DeclarationError(f"stack {stack}: its manifest output is not a ringzero manifest: {e}") from None


def _config_values(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise DeclarationError(f"config {path}: {e}") from None
    out: dict[str, str] = {}
    for key, value in (doc.get("config") or {}).items():
        if isinstance(value, dict) and "secure" in value:
            continue  # encrypted values stay out: a declaration never needs them to render
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def from_program(program: Path, config: Path | None = None, stack: str = "review") -> Topology:
    """Run a Pulumi program under mocks; the topology of its `manifest` stack output (what
    `deployed.manifest_json()` exports, and what `--stack` reads from a deployed stack).

    `config`: a Pulumi.<stack>.yaml whose `config:` the program reads with pulumi.Config.
    """
    import pulumi
    from pulumi.runtime.settings import get_root_resource
    from pulumi.runtime.sync_await import _sync_await

    class Mocks(pulumi.runtime.Mocks):
        """Resources get fake ids and echo their inputs: enough to run a program's declarations."""

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
            return {}, None

    program = program.resolve()
    if not program.is_file():
        raise DeclarationError(f"--program {program}: no such file")
    project = "ringzero"
    pulumi_yaml = program.parent / "Pulumi.yaml"
    if pulumi_yaml.is_file():
        project = str((yaml.safe_load(pulumi_yaml.read_text()) or {}).get("name", project))
    pulumi.runtime.set_mocks(Mocks(), project=project, stack=stack, preview=True)
    pulumi.runtime.set_all_config(_config_values(config))
    getattr(get_root_resource(), "outputs", {}).pop("manifest", None)  # a program run before in this process
    cwd, path0 = os.getcwd(), list(sys.path)
    try:
        os.chdir(program.parent)
        sys.path.insert(0, str(program.parent))
        runpy.run_path(str(program), run_name="__main__")
        root = get_root_resource()  # the Stack that set_mocks made: pulumi.export writes its outputs
        value = getattr(root, "outputs", {}).get("manifest")
        if isinstance(value, pulumi.Output):
            value = _sync_await(value.future())
    except (SpecError, pulumi.RunError) as e:
        # What `pulumi preview` refuses (stack.topology_from_config turns a SpecError into a
        # RunError so that preview prints no traceback) is one line here too.
        raise DeclarationError(f"--program {program}: {e}") from None
    finally:
        os.chdir(cwd)
        sys.path[:] = path0
    if not isinstance(value, str):
        raise DeclarationError(f"--program {program}: it exports no `manifest` output "
                               "(pulumi.export(\"manifest\", deployed.manifest_json()))")
    try:
        return from_manifest(json.loads(value))
    except (ValueError, SpecError) as e:
        raise DeclarationError(f"--program {program}: its manifest output is not a ringzero manifest: {e}") from None
