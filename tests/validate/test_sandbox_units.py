"""The namespaces and fsview kinds' units through systemd 252's own parser (`systemd-analyze
verify`): every directive known and valid, in the service, its drop-ins and the overlay's
mount unit (RuntimeDirectory= included: a mount unit has an exec context)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ringzero.plan import policies_plan
from ringzero.spec import FilesystemViewSpec, HostSpec, NamespacesSpec, NodePolicies, OverlaySpec, ServiceSpec

NS = NamespacesSpec("rzsb-ns", ("rzsb-ns.service",), private=("pid", "cgroup", "net", "ipc", "uts", "mnt", "user"),
                    may_create=("pid", "cgroup", "mnt"))
NET = NamespacesSpec("rzsb-net", ("rzsb-net.service",), private=("net",), may_create=())
VIEW = FilesystemViewSpec("rzsb-view", ("rzsb-fs.service",), read_only_system=True, writable=("/var/tmp",),
                          hidden=("/root",), bind_read_only=("/etc/hostname:/etc/rzsb",),
                          bind_read_write=("/srv",), overlay=OverlaySpec("/mnt", ("/opt", "/usr/share")))
POLICIES = NodePolicies("vm1", services=tuple(ServiceSpec(n, "/usr/bin/sleep infinity")
                                              for n in ("rzsb-ns.service", "rzsb-net.service", "rzsb-fs.service")),
                        namespaces=(NS, NET), fsviews=(VIEW,))
PLAN = policies_plan(POLICIES, HostSpec("vm1"))
UNITS = sorted(u["unit"] for u in PLAN["units"])


def _tree(root: Path) -> Path:
    for path, f in PLAN["files"].items():
        dest = root / path.removeprefix("/etc/systemd/system/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f["content"])
    return root


@pytest.mark.parametrize("unit", UNITS)
def test_units_verify(unit: str, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{root}:", "SYSTEMD_LOG_LEVEL": "warning"}
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", str(root / unit)], env=env,
                         capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (res.stderr + res.stdout).splitlines() if "rzsb" in ln or "ringzero" in ln]
    assert res.returncode == 0 and not problems, res.stderr + res.stdout


def test_the_mount_unit_is_one_of_them() -> None:
    assert "run-ringzero_fsview_rzsb\\x2dview-merged.mount" in UNITS
