"""The kernel tier: the playbooks and the compliance suite on a real guest, without Pulumi.

One guest, booted by hand (qemu-system, TCG here) once for the tier, plays both nodes of
the reference declaration (vm1's policies and Xen prep, vm2's KVM prep: they touch
different things). Tests run in file order: converge → idempotence → compliance → drift →
removal → negative controls (which break the guest last).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ringzero.compliance import Verdict, run_compliance
from ringzero.plan import node_plan
from ringzero.playbook import RunResult, run_playbook
from ringzero.spec import Topology, to_manifest
from tests.fixtures import junit_statuses, leftovers_script, local_topology
from tests.handboot import HandGuest, dev_or_hand_booted

PORT = 2231
SHARED_PORT = 2233
NODES = ("vm1", "vm2")


@dataclass
class Node:
    guest: HandGuest
    topology: Topology
    workdir: Path

    def apply(self, node: str, playbook: str = "site.yml", *, state: str = "present",
              check: bool = False) -> RunResult:
        extravars: dict[str, Any] = {"ringzero_plan": node_plan(self.topology, node), "ringzero_state": state}
        conn = {**self.guest.node, "name": node}
        r = run_playbook(conn, self.guest.private_key, extravars, playbook=playbook, check=check)
        assert r.ok, f"{playbook} on {node}: {r.failures}"
        return r

    def leftovers(self) -> list[str]:
        return [p for n in NODES for p in self.guest.ssh(leftovers_script(self.topology, n)).split()]

    def check_cli(self, report_name: str) -> tuple[int, dict[str, str], str]:
        """`ringzero check --manifest` against both nodes: (exit code, check id -> pass|fail|…, output)."""
        manifest, junit = self.workdir / "manifest.json", self.workdir / f"{report_name}-cli.xml"
        manifest.write_text(json.dumps(to_manifest(self.topology)))
        hosts = ",".join(f"{n}={self.guest.url}" for n in NODES)
        res = subprocess.run(
            [sys.executable, "-m", "ringzero.cli", "check", "--manifest", str(manifest), "--hosts", hosts,
             "-i", str(self.guest.key_file), "--known-hosts", str(self.guest.known_hosts), "--junit", str(junit)],
            capture_output=True, text=True, timeout=600)
        statuses = {f"{host}::{control}": s for (host, control), s in junit_statuses(junit).items()}
        return res.returncode, statuses, res.stdout + res.stderr

    def suite(self, report_name: str) -> tuple[Verdict, dict[str, str]]:
        """The declared checks as ComplianceCheck runs them (the engine of `ringzero check`, in
        process) against both nodes; (verdict, id -> pass|fail|error|…)."""
        nodes = [{**self.guest.node, "name": n} for n in NODES]
        v = run_compliance(json.dumps(to_manifest(self.topology)), nodes, self.guest.private_key,
                           str(self.workdir / f"{report_name}.xml"))
        return v, v.outcomes


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    tmp = tmp_path_factory.mktemp("kernel")
    with dev_or_hand_booted("rz-kernel", PORT, tmp / "guest") as guest:
        yield Node(guest, local_topology(), tmp)


@pytest.fixture(scope="session")
def shared_guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandGuest]:
    """One guest, booted once for the tier, for every module that leaves it as it found it (the
    isolation kinds, the 500-policy scale test): a TCG boot is a minute or more, restoring what a
    module applied is its own removal. test_kernel_features breaks its guest on purpose (negative
    controls last) and boots its own (`node`)."""
    with dev_or_hand_booted("rz-shared", SHARED_PORT, tmp_path_factory.mktemp("shared") / "guest") as guest:
        yield guest
