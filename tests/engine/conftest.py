"""The engine tier drives the real `pulumi` CLI, built by `make setup`, fully offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ringzero.stack import resolve_image_paths
from tests.fixtures import load_local_config

ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN = ROOT / ".toolchain" / "bin"


def diagnostics(output: str, limit: int = 4000) -> str:
    """Pulumi's `Diagnostics:` section and every `error:` line of a run's output."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Diagnostics:")), None)
    section = lines[start:start + 60] if start is not None else []
    errors = [line for line in lines if line.lstrip().startswith("error:") and line not in section]
    return "\n".join(["--- diagnostics:", *section, *errors])[:limit]


@dataclass
class Project:
    """A throwaway Pulumi project with its own file backend; runs the CLI like a user."""

    dir: Path
    env: dict[str, str]
    stack: str = "test"

    def pulumi(self, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            ["pulumi", *args, "--stack", self.stack, "--non-interactive"],
            cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        if check and res.returncode != 0:
            # The cause first: a CI log keeps the head and the tail of a long message and cuts
            # the middle, where Pulumi prints its diagnostics after the outputs.
            raise AssertionError(f"pulumi {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{diagnostics(res.stdout + res.stderr)}\n--- stdout:\n{res.stdout}\n"
                                 f"--- stderr:\n{res.stderr}")
        return res

    def preview_steps(self) -> list[dict[str, Any]]:
        res = self.pulumi("preview", "--json")
        return list(json.loads(res.stdout)["steps"])


def _offline_env(tmp: Path) -> dict[str, str]:
    needed = ("pulumi", "pulumi-language-python", "pulumi-resource-libvirt", "pulumi-resource-pulumi-python")
    missing = [b for b in needed if not (TOOLCHAIN / b).exists()]
    if missing:
        pytest.fail(f"toolchain incomplete ({', '.join(missing)} missing in {TOOLCHAIN}): run `make setup`")
    (tmp / "state").mkdir()
    # The libvirt plugin as `make plugins` installs it: in PULUMI_HOME's plugin cache, and
    # ambient plugins ignored, so the engine never warns "using pulumi-resource-libvirt from $PATH".
    plugin_dir = tmp / "home" / "plugins" / "resource-libvirt-v0.5.4"
    plugin_dir.mkdir(parents=True)
    (plugin_dir / "pulumi-resource-libvirt").symlink_to(TOOLCHAIN / "pulumi-resource-libvirt")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(
        PATH=f"{TOOLCHAIN}:{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        PULUMI_HOME=str(tmp / "home"),
        PULUMI_BACKEND_URL=f"file://{tmp / 'state'}",
        PULUMI_CONFIG_PASSPHRASE="engine-tier-test",
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_IGNORE_AMBIENT_PLUGINS="true",
    )
    return env


def make_project(tmp: Path, main_py: str, config: dict[str, Any] | None = None, name: str = "rzengine") -> Project:
    pdir = tmp / "project"
    pdir.mkdir()
    (pdir / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": name,
        "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": str(ROOT / ".venv")}},
    }))
    (pdir / "__main__.py").write_text(main_py)
    project = Project(pdir, _offline_env(tmp))
    if config is not None:
        (pdir / "Pulumi.test.yaml").write_text(yaml.safe_dump({"config": config}))
    subprocess.run(["pulumi", "stack", "init", project.stack, "--non-interactive"], cwd=pdir, env=project.env,
                   check=True, capture_output=True, text=True)
    return project


def reference_config() -> dict[str, Any]:
    """Pulumi.local.yaml's config with image paths made absolute (the copy lives elsewhere)."""
    raw = load_local_config()
    resolve_image_paths(raw.get("ringzero:images", []), ROOT)
    return raw


@pytest.fixture
def tmp_project_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
