"""ringzero's compliance suite (testinfra): declared policies checked on real nodes.

Standalone::

    pytest tests/compliance --manifest manifest.json \
        --hosts vm1=ssh://root@127.0.0.1:2201,vm2=ssh://root@127.0.0.1:2202 \
        --ssh-identity-file key --known-hosts known_hosts --junitxml report.xml

Every check comes from the manifest (one parametrised test, ids such as
`vm1::slice:web.slice::memory.max`); each node is read over one SSH connection, its file
and unit reads batched into one round trip.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import testinfra
from ringzero.checks import Check, Probe, expectations
from ringzero.checks.hosts import Target, parse_hosts
from ringzero.spec import SpecError, Topology, from_manifest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("ringzero", "ringzero compliance")
    # --hosts (NODE=ssh://user@host:port,…) and --ssh-identity-file are testinfra's own options.
    g.addoption("--manifest", help="policy manifest (JSON) with the declared policies")
    g.addoption("--known-hosts", default=None, help="known_hosts file with the nodes' host keys (checking stays on)")


def _load(config: pytest.Config) -> tuple[Topology, list[Target]]:
    cached = getattr(config, "_ringzero", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    path = config.getoption("--manifest")
    if not path:
        raise pytest.UsageError("ringzero compliance: --manifest M.json is required")
    try:
        topology = from_manifest(json.loads(Path(path).read_text()))
    except (OSError, ValueError, SpecError) as e:
        raise pytest.UsageError(f"ringzero compliance: manifest {path}: {e}") from None
    try:
        targets = parse_hosts(config.getoption("--hosts") or "", [n.node for n in topology.nodes])
    except ValueError as e:
        raise pytest.UsageError(f"ringzero compliance: --hosts {e}") from None
    if not targets:
        raise pytest.UsageError("ringzero compliance: --hosts names no node to check")
    config._ringzero = (topology, targets)  # type: ignore[attr-defined]
    return topology, targets


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "check" in metafunc.fixturenames:
        topology, targets = _load(metafunc.config)
        checks = expectations(topology, {t.node for t in targets})
        metafunc.parametrize("check", checks, ids=[c.id for c in checks])


def _ssh_config(tmp: Path, known_hosts: str | None) -> str:
    lines = ["Host *", "  BatchMode yes", "  LogLevel ERROR"]
    if known_hosts:
        lines += ["  StrictHostKeyChecking yes", f"  UserKnownHostsFile {Path(known_hosts).resolve()}",
                  "  GlobalKnownHostsFile /dev/null"]
    path = tmp / "ssh_config"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="session")
def probes(request: pytest.FixtureRequest) -> Any:
    """node -> Probe, each created on first use with all of that node's reads in one batch."""
    config = request.config
    topology, targets = _load(config)
    by_node = {t.node: t for t in targets}
    all_checks = expectations(topology, set(by_node))
    tmp = Path(tempfile.mkdtemp(prefix="ringzero-compliance-"))
    ssh_config = _ssh_config(tmp, config.getoption("--known-hosts"))
    identity = config.getoption("--ssh-identity-file")
    made: dict[str, Probe] = {}

    def get(node: str) -> Probe:
        if node not in made:
            t = by_node[node]
            host = testinfra.get_host(
                t.url, ssh_config=ssh_config, ssh_identity_file=identity,
                controlpath=str(tmp / f"cm-{node}"),
            )
            probe = Probe(host, node)
            probe.fetch(k for c in all_checks if c.node == node for k in c.reads)
            made[node] = probe
        return made[node]

    return get


@pytest.fixture
def node(check: Check, probes: Any, record_property: Any) -> Probe:
    record_property("node", check.node)
    record_property("subject", check.subject)
    record_property("aspect", check.aspect)
    record_property("expectation", check.title)
    probe: Probe = probes(check.node)
    return probe
