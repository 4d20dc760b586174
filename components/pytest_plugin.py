"""ringzero's pytest plugin: the compliance suite's options and fixtures, on top of testinfra's.

Registered through the `pytest11` entry point `ringzero`, so any pytest in a venv with the
wheel knows `--manifest`, `--baseline`, `--param`, `--known-hosts` and `--node-names`, and
takes the machines with testinfra's own options (`--hosts` in testinfra's syntax,
`--connection`, `--ssh-config`, `--ssh-identity-file`, `--sudo`, `--sudo-user`,
`--ansible-inventory`, `--force-ansible`). From any directory::

    pytest --pyargs ringzero.compliance_suite --manifest manifest.json \
        --hosts ssh://root@10.0.0.5,ssh://root@10.0.0.6 --ssh-identity-file key --known-hosts known_hosts
    pytest --pyargs ringzero.compliance_suite --baseline isolation --hosts local://
    pytest --pyargs ringzero.compliance_suite --manifest manifest.json --hosts 'ansible://all' \
        --ansible-inventory hosts.ini

A machine is the manifest node of the same name: its testinfra host name (the inventory
name, or the address of `ssh://user@ADDRESS:port`), or the name given in the same position of
`--node-names vm1,vm2` (needed when an address is not the node's name, or one machine plays two
nodes). A manifest with one node takes the one machine given. With a `--baseline`, a machine
that is no node of the manifest is checked against the baseline only.

Nothing happens unless a test asks for the `ringzero_check` fixture (the suite's one test,
`ringzero.compliance_suite.test_policies`): the plugin is inert in other test suites.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .checks import Check, Probe, machine_checks
from .checks.baseline import CatalogueError, load_catalogue, parse_params, resolve_all
from .checks.run import SshOptions, ssh_config_file
from .declaration import DeclarationError, from_manifest_file

# testinfra's SSH default; each read is bounded on its own (ringzero.checks.probe)
CONNECT_TIMEOUT_S = 10


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("ringzero", "ringzero compliance (machines: testinfra's --hosts, --ssh-config, ...)")
    g.addoption("--manifest", help="policy manifest (JSON, from `ringzero manifest`) with the declared policies")
    g.addoption("--baseline", action="append", default=[],
                help="a built-in baseline (repeatable; see `ringzero check --list-baselines`)")
    g.addoption("--param", action="append", default=[], metavar="NAME=VALUE", help="a baseline parameter")
    g.addoption("--known-hosts", default=None,
                help="known_hosts with the machines' host keys (host keys are always checked; "
                     "ignored with --ssh-config, whose settings then apply)")
    g.addoption("--node-names", default=None, metavar="NODE,...",
                help="the manifest node each machine of --hosts is, in the same order")


@dataclass
class Machine:
    """One machine to check: its manifest node name and how testinfra reaches it."""

    name: str
    spec: str  # the testinfra host spec it came from
    host_name: str = ""  # testinfra's host name (`ansible://all` expands to several)


@dataclass
class Loaded:
    machines: list[Machine]
    checks: list[Check]


def _default_name(backend: Any) -> str:
    """testinfra's host name; with a port other than 22, `address:port` (as `ringzero check` names it)."""
    name = str(backend.get_hostname())
    spec = getattr(backend, "host", None)
    port = getattr(spec, "port", None)
    if port and str(port) != "22":
        return f"{name}:{port}"
    return name


# ringzero's older `--hosts NODE=ssh://…` form, still accepted (testinfra specs have no `=`
# before their `://` or `?`)
_NAMED = re.compile(r"(?P<name>[A-Za-z0-9_.:-]+)=(?P<spec>[^=].*)")


def _expand(config: pytest.Config) -> list[tuple[str, str, Any]]:
    """(spec, name, backend) of every machine `--hosts` (or `--ansible-inventory` alone: all
    its hosts) names, in order; each spec expanded on its own, so one address given twice
    (one machine playing two nodes) stays two machines. The name is testinfra's host name, or
    NODE of the older `NODE=ssh://…` form."""
    import testinfra.backend

    hosts = config.getoption("--hosts")
    specs = [h.strip() for h in hosts.split(",") if h.strip()] if hosts else []
    if not specs and config.getoption("--ansible-inventory"):
        specs = ["ansible://all"]
    elif not specs and config.getoption("--connection") == "local":
        specs = ["local://"]  # testinfra's `--connection local` without hosts: this machine
    out: list[tuple[str, str, Any]] = []
    for spec in specs:
        named = _NAMED.fullmatch(spec)
        if named:
            spec = named["spec"]
        try:
            backends = testinfra.backend.get_backends([spec], **_testinfra_kw(config))
        except Exception as e:  # testinfra raises RuntimeError, ValueError, ansible's errors
            raise pytest.UsageError(f"ringzero compliance: --hosts {spec!r}: {e}") from None
        out += [(spec, named["name"] if named and len(backends) == 1 else _default_name(b), b) for b in backends]
    return out


def _testinfra_kw(config: pytest.Config) -> dict[str, Any]:
    """testinfra's own options, as its plugin passes them to `testinfra.get_hosts`."""
    o = config.option
    return {"connection": o.connection, "ssh_config": o.ssh_config, "ssh_identity_file": o.ssh_identity_file,
            "sudo": o.sudo, "sudo_user": o.sudo_user, "ansible_inventory": o.ansible_inventory,
            "force_ansible": o.force_ansible, "ssh_extra_args": o.ssh_extra_args}


def _load(config: pytest.Config) -> Loaded:
    cached = getattr(config, "_ringzero", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    path, names = config.getoption("--manifest"), config.getoption("--baseline")
    if not path and not names:
        raise pytest.UsageError("ringzero compliance: --manifest M.json and/or --baseline NAME is required")
    try:
        topology = from_manifest_file(path) if path else None
        catalogue = load_catalogue()
        baselines = [catalogue.baseline(n) for n in dict.fromkeys(names)]
        given = parse_params(config.getoption("--param"))
        params = resolve_all(baselines, given)
    except (ValueError, CatalogueError, DeclarationError) as e:
        raise pytest.UsageError(f"ringzero compliance: {e}") from None
    nodes = [n.node for n in topology.nodes] if topology else []
    found = _expand(config)
    if not found:
        raise pytest.UsageError("ringzero compliance: name the machines with --hosts (testinfra's syntax: "
                                "ssh://user@host:port, local://, ansible://all with --ansible-inventory)")
    machines = _name(found, config.getoption("--node-names"), nodes, strict=topology is not None and not baselines)
    checks = [c for m in machines for c in machine_checks(m.name, topology, baselines, params, given)]
    loaded = Loaded(machines, checks)
    config._ringzero = loaded  # type: ignore[attr-defined]
    return loaded


def _name(found: list[tuple[str, str, Any]], node_names: str | None, nodes: list[str],
          strict: bool) -> list[Machine]:
    """Each machine's node name: `--node-names` in order, else its host name; with a manifest
    and no baseline (`strict`), every name must be a node (a single node takes a single machine)."""
    if node_names is not None:
        names = [n.strip() for n in node_names.split(",")]
        if len(names) != len(found):
            raise pytest.UsageError(f"ringzero compliance: --node-names gives {len(names)} names for "
                                    f"{len(found)} machines ({', '.join(d for _, d, _ in found)})")
    elif strict and len(nodes) == 1 and len(found) == 1 and found[0][1] == _default_name(found[0][2]):
        names = nodes
    else:
        names = [d for _, d, _ in found]
    machines = [Machine(n, spec, host_name=_default_name(b)) for n, (spec, _, b) in zip(names, found, strict=True)]
    if strict:
        strays = [m.name for m in machines if m.name not in nodes]
        if strays:
            raise pytest.UsageError(
                f"ringzero compliance: {', '.join(strays)}: not a node of the manifest (declared: "
                f"{', '.join(nodes)}); name the machines with --node-names, or add --baseline to check them")
    seen = [m.name for m in machines]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise pytest.UsageError(f"ringzero compliance: {', '.join(dupes)} named twice; name each machine "
                                "with --node-names")
    return machines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ringzero_check" in metafunc.fixturenames:
        checks = _load(metafunc.config).checks
        metafunc.parametrize("ringzero_check", checks, ids=[c.id for c in checks])


@pytest.fixture(scope="session")
def ringzero_probes(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Probe]]:
    """node -> Probe, each created on first use with all of that node's reads in one batch,
    over one SSH connection per machine (closed at the end of the session)."""
    import testinfra.backend
    import testinfra.host

    config = request.config
    loaded = _load(config)
    by_node = {m.name: m for m in loaded.machines}
    tmp = Path(tempfile.mkdtemp(prefix="rz-pytest-", dir="/tmp"))
    kw = _testinfra_kw(config)
    if not kw["ssh_config"]:
        # ringzero's own: batch mode, host keys always checked (against --known-hosts if given)
        kw["ssh_config"] = ssh_config_file(tmp, SshOptions(kw["ssh_identity_file"], config.getoption("--known-hosts"),
                                                           timeout_s=CONNECT_TIMEOUT_S))
    made: dict[str, Probe] = {}
    controlpaths: list[str] = []

    def get(node: str) -> Probe:
        if node not in made:
            m = by_node[node]
            controlpath = str(tmp / f"cm-{len(controlpaths)}")
            controlpaths.append(controlpath)
            (backend,) = [b for b in testinfra.backend.get_backends(
                [m.spec], **kw, timeout=CONNECT_TIMEOUT_S, controlpath=controlpath)
                if _default_name(b) == m.host_name][:1]
            host = testinfra.host.Host(backend)
            backend.set_host(host)
            probe = Probe(host, node)
            probe.fetch(k for c in loaded.checks if c.node == node for k in c.reads)
            made[node] = probe
        return made[node]

    yield get
    for path in controlpaths:
        if Path(path).exists():
            subprocess.run(["ssh", "-o", f"ControlPath={path}", "-O", "exit", "ringzero"],
                           capture_output=True, timeout=10, check=False)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def ringzero_probe(ringzero_check: Check, ringzero_probes: Callable[[str], Probe],
                   record_property: Callable[[str, object], None]) -> Probe:
    """The node of the current check, read; the check's metadata goes into the JUnit report."""
    record_property("node", ringzero_check.node)
    record_property("subject", ringzero_check.subject)
    record_property("aspect", ringzero_check.aspect)
    record_property("expectation", ringzero_check.title)
    return ringzero_probes(ringzero_check.node)


@pytest.fixture(scope="session")
def ringzero_verdicts(request: pytest.FixtureRequest) -> dict[str, tuple[dict[str, Check], dict[str, tuple[str, str]]]]:
    """node -> (its checks by control, its verdicts so far): how `ringzero.checks.run.judge` sees a node."""
    by_node: dict[str, tuple[dict[str, Check], dict[str, tuple[str, str]]]] = {}
    for c in _load(request.config).checks:
        by_node.setdefault(c.node, ({}, {}))[0][c.control] = c
    return by_node
