"""ringzero's compliance suite (testinfra): declared policies checked on real nodes.

Standalone::

    pytest tests/compliance --manifest manifest.json \
        --hosts vm1=ssh://root@127.0.0.1:2201,vm2=ssh://root@127.0.0.1:2202 \
        --ssh-identity-file key --known-hosts known_hosts --junitxml report.xml

Every check comes from the manifest and/or a built-in baseline (`--baseline isolation`): one
parametrised test, ids such as `vm1::slice:web.slice::memory.max` or `vm1::baseline::RZ-BPF-1`;
each node is read over one SSH connection, its file and unit reads batched into one round
trip. `ringzero check` runs the same checks without pytest (and adds waivers and reports).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ringzero.checks import Check, Probe, machine_checks
from ringzero.checks.baseline import CatalogueError, load_catalogue, parse_params, resolve_all
from ringzero.checks.hosts import Endpoint, parse_endpoints
from ringzero.checks.run import SshOptions, connect, ssh_config_file
from ringzero.declaration import DeclarationError, from_manifest_file


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("ringzero", "ringzero compliance")
    # --hosts (NODE=ssh://user@host:port,… or local://) and --ssh-identity-file are testinfra's own options.
    g.addoption("--manifest", help="policy manifest (JSON) with the declared policies")
    g.addoption("--baseline", action="append", default=[],
                help="a built-in baseline (see `ringzero check --list-baselines`)")
    g.addoption("--param", action="append", default=[], help="a baseline parameter NAME=VALUE")
    g.addoption("--known-hosts", default=None, help="known_hosts file with the nodes' host keys (checking stays on)")


@dataclass
class Loaded:
    endpoints: list[Endpoint]
    checks: list[Check]


def _load(config: pytest.Config) -> Loaded:
    cached = getattr(config, "_ringzero", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    path, names = config.getoption("--manifest"), config.getoption("--baseline")
    if not path and not names:
        raise pytest.UsageError("ringzero compliance: --manifest M.json and/or --baseline NAME is required")
    try:
        topology = from_manifest_file(path) if path else None
        nodes = [n.node for n in topology.nodes] if topology else []
        endpoints = parse_endpoints(config.getoption("--hosts") or "", nodes if topology and not names else None)
        catalogue = load_catalogue()
        baselines = [catalogue.baseline(n) for n in dict.fromkeys(names)]
        given = parse_params(config.getoption("--param"))
        params = resolve_all(baselines, given)
    except (ValueError, CatalogueError, DeclarationError) as e:
        raise pytest.UsageError(f"ringzero compliance: {e}") from None
    if not endpoints:
        raise pytest.UsageError("ringzero compliance: --hosts names no node to check")
    checks = [c for e in endpoints for c in machine_checks(e.name, topology, baselines, params, given)]
    loaded = Loaded(endpoints, checks)
    config._ringzero = loaded  # type: ignore[attr-defined]
    return loaded


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "check" in metafunc.fixturenames:
        checks = _load(metafunc.config).checks
        metafunc.parametrize("check", checks, ids=[c.id for c in checks])


@pytest.fixture(scope="session")
def probes(request: pytest.FixtureRequest) -> Any:
    """node -> Probe, each created on first use with all of that node's reads in one batch."""
    config = request.config
    loaded = _load(config)
    by_node = {e.name: e for e in loaded.endpoints}
    all_checks = loaded.checks
    tmp = Path(tempfile.mkdtemp(prefix="ringzero-compliance-"))
    # --ssh-identity-file and --sudo are testinfra's own options
    ssh = SshOptions(config.getoption("--ssh-identity-file"), config.getoption("--known-hosts"),
                     timeout_s=10, sudo=bool(config.getoption("--sudo")))  # testinfra's default timeout
    ssh_config = ssh_config_file(tmp, ssh)
    made: dict[str, Probe] = {}

    def get(node: str) -> Probe:
        if node not in made:
            probe = Probe(connect(by_node[node], ssh, ssh_config, str(tmp / f"cm-{node}")), node)
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


@pytest.fixture(scope="session")
def verdicts(request: pytest.FixtureRequest) -> Any:
    """node -> (its checks by control, its verdicts so far): how `ringzero.checks.run.judge` sees a node."""
    by_node: dict[str, tuple[dict[str, Check], dict[str, tuple[str, str]]]] = {}
    for c in _load(request.config).checks:
        by_node.setdefault(c.node, ({}, {}))[0][c.control] = c
    return by_node
