"""Bad declarations given to the `ringzero` command: one line naming the problem, exit 2, never
a traceback or a hang (real manifest files and a real program run through the CLI)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ringzero.spec import to_manifest
from tests.fixtures import ROOT, load_local_config, local_topology

GOOD = to_manifest(local_topology())


def _ringzero(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ringzero.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def _one_error_line(res: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ringzero: error: "), res.stderr
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]}"


def _node(doc: dict[str, Any]) -> dict[str, Any]:
    return next(n for n in doc["nodes"] if n["node"] == "vm1")


def _set_slices_null(d: dict[str, Any]) -> None:
    _node(d)["slices"] = None


def _include_fifo(d: dict[str, Any], fifo: Path) -> None:
    agent = _node(d)["ebpf"][0]
    agent.update(program=f'#include "{fifo}"\nBEGIN {{ exit(); }}\n', tool=None)


def _cpu_weight_object(d: dict[str, Any]) -> None:
    _node(d)["slices"][0]["cpu_weight"] = {"value": 100}


def _memory_max_zero(d: dict[str, Any]) -> None:
    _node(d)["slices"][0]["memory_max"] = 0


def _two_agents_one_file(d: dict[str, Any]) -> None:
    first = _node(d)["ebpf"][0]
    first["output"] = "/var/log/ringzero/shared.log"
    _node(d)["ebpf"].append({**first, "name": "second"})


def _ssh_as_root_adopted_off(d: dict[str, Any]) -> None:
    _node(d)["services"].append({"name": "ssh.service", "exec_start": "/usr/sbin/sshd -D", "description": "",
                                 "user": "root", "restart": "always", "adopt": False})


MUTATIONS: list[tuple[str, Callable[..., None], tuple[str, ...]]] = [
    ("slices-null", _set_slices_null, ("Manifest 'nodes/", "/slices'", "None is not of type 'array'")),
    ("bpftrace-include-fifo", _include_fifo, ("EbpfAgent", "no #include")),
    ("cpu_weight-object", _cpu_weight_object, ("/slices/0/cpu_weight'",)),
    ("memory_max-zero", _memory_max_zero, ("CgroupSlice", "memory_max=0", "systemd ignores 0")),
    ("two-agents-one-output", _two_agents_one_file,
     ("Node 'vm1'", "/var/log/ringzero/shared.log", "written by both EbpfAgent")),
    ("os-service-not-adopted", _ssh_as_root_adopted_off, ("Service 'ssh.service'", "set adopt: true")),
]


@pytest.mark.parametrize(("mutate", "expected"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
@pytest.mark.parametrize("command", ["check", "render"])
def test_bad_manifest_is_one_line_and_exit_2(command: str, mutate: Callable[..., None], expected: tuple[str, ...],
                                             tmp_path: Path) -> None:
    doc = copy.deepcopy(GOOD)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    if mutate is _include_fifo:
        mutate(doc, fifo)
    else:
        mutate(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    args = (["check", "--manifest", str(bad), "--hosts", "local://"] if command == "check"
            else ["render", "--manifest", str(bad), "--out", str(tmp_path / "out")])
    _one_error_line(_ringzero(*args), f"manifest {bad}", *expected)


@pytest.mark.parametrize(("content", "expected"), [
    (b'{"kind": "ringzero.manifest", ', "manifest"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"kind": "\xff"}', "manifest"),  # not UTF-8
], ids=["truncated", "deep", "not-utf8"])
def test_manifest_that_is_not_json_is_one_line(content: bytes, expected: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    _one_error_line(_ringzero("render", "--manifest", str(bad), "--out", str(tmp_path / "out")), expected)


@pytest.mark.parametrize("command", ["manifest", "render"])
def test_program_that_preview_refuses_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    doc = {"config": load_local_config()}
    nodes = doc["config"]["ringzero:nodes"]
    next(n for n in nodes if n["node"] == "vm1")["slices"][0]["cpu_weight"] = 0
    config = tmp_path / "Pulumi.bad.yaml"
    config.write_text(yaml.safe_dump(doc))
    args = ["--program", str(ROOT / "__main__.py"), "--config", str(config)]
    args += ["--out", str(tmp_path / "out")] if command == "render" else []
    _one_error_line(_ringzero(command, *args), "--program", "CgroupSlice 'web-api.slice': cpu_weight=0 is invalid")
