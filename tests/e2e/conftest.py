"""The e2e tier: the real engine boots real guests on this machine's libvirtd (TCG here).

Guests boot once per tier: the module-scoped `stack` fixture brings the e2e stack up and
every test reads from it; the last test destroys it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ringzero.ssh import ssh_options
from ringzero.stack import key_dir

from tests.engine.conftest import ROOT, Project, make_project, reference_config
from tests.fixtures import SSH_LOGINS

URI = "qemu:///system"
# Ports unlike the `local` stack's, so a user's own stack can run beside the tests.
PORTS = {"vm1": 2211, "vm2": 2212}


def virsh(*args: str) -> str:
    res = subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"virsh {' '.join(args)}: {res.stderr}"
    return res.stdout


@dataclass
class Guest:
    name: str
    port: int
    key_file: Path
    known_hosts: Path

    def run(self, command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh", *ssh_options(str(self.key_file), str(self.known_hosts), self.port), "root@127.0.0.1", command],
            capture_output=True, text=True, timeout=120, input=stdin,
        )

    def ssh(self, command: str, stdin: str | None = None) -> str:
        res = self.run(command, stdin)
        assert res.returncode == 0, f"{self.name}: {command}: {res.stderr}"
        return res.stdout.strip()

    def ssh_logins(self) -> int:
        """SSH logins since boot (this one's own included: it is logged before it runs)."""
        return int(self.ssh(SSH_LOGINS))

    def ansible_runs(self) -> int:
        """ringzero_node module runs since boot: Ansible logs each invocation to the journal."""
        return int(self.ssh("journalctl -b -q -t ansible-ringzero_node --no-pager | grep -c 'Invoked with' || true"))


@dataclass
class Stack:
    project: Project
    config: dict[str, Any]
    workdir: Path

    def outputs(self) -> dict[str, Any]:
        return dict(json.loads(self.project.pulumi("stack", "output", "--json", "--show-secrets").stdout))

    def guest(self, name: str) -> Guest:
        outs = self.outputs()
        key = self.workdir / "access_key"
        key.write_text(outs["access_private_key"])
        key.chmod(0o600)
        kh = self.workdir / "known_hosts"
        kh.write_text("".join(v["known_hosts"] + "\n" for v in outs["vms"].values() if v["known_hosts"]))
        return Guest(name, int(outs["vms"][name]["ssh_port"]), key, kh)

    def write_config(self) -> None:
        import yaml

        (self.project.dir / "Pulumi.test.yaml").write_text(yaml.safe_dump({"config": self.config}))


def e2e_config() -> dict[str, Any]:
    config = reference_config()
    for vm in config["ringzero:vms"]:
        if vm["name"] in PORTS:
            vm["ssh_port"] = PORTS[vm["name"]]
    for host in config["ringzero:hosts"]:
        if host.get("via_vm") in PORTS:
            host["uri"] = f"qemu+ssh://root@127.0.0.1:{PORTS[host['via_vm']]}/system"
    return config


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for name in PORTS:
        domains = virsh("list", "--all", "--name").split()
        if name in domains:
            pytest.fail(f"a domain named {name} already exists on {URI}: destroy the stack that owns it first")
    tmp = tmp_path_factory.mktemp("e2e")
    config = e2e_config()
    project = make_project(tmp, (ROOT / "__main__.py").read_text(), config, name="ringzero")
    s = Stack(project, config, tmp)
    try:
        yield s
    finally:
        # Leave nothing behind even when a test failed half way.
        project.pulumi("destroy", "--yes", "--run-program", check=False, timeout=900)
        # the remote host's key files for this throwaway stack (see ringzero.stack.key_dir)
        shutil.rmtree(key_dir("ringzero", project.stack), ignore_errors=True)
