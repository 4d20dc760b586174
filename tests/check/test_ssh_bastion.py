"""`ringzero check` through a ProxyJump bastion, the bastion given by the user's SSH config
(`--ssh-config`) or by an inventory's `ansible_ssh_common_args`.

Two throwaway sshd (`/usr/sbin/sshd -D`, own host keys and authorized_keys), each in a network
namespace this test creates: this machine ─veth─ bastion (198.18.0.2) ─veth─ target
(198.18.0.6). This machine has no route to the target (an `unreachable` route for its /30),
so a check that reads the target went through the bastion; the target's log shows the login
coming from the bastion's side of the link. The target shares this machine's kernel and files,
so its verdicts are this machine's (`local://`)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from tests.check.conftest import Cli
from tests.fixtures import junit_statuses
from tests.sarif_rules import github_sarif_problems

pytestmark = pytest.mark.check

SSHD = "/usr/sbin/sshd"
SARIF_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json").read_text())
PORT = 2222
# two /30 links of the benchmarking range (RFC 2544), which this machine does not otherwise use
HERE, BASTION = "198.18.0.1", "198.18.0.2"
BASTION_INNER, TARGET = "198.18.0.5", "198.18.0.6"


@dataclass
class Net:
    dir: Path
    client_key: Path
    known_hosts: Path
    logs: dict[str, Path]

    def logins(self, name: str, source: str) -> int:
        """Public-key logins sshd `name` accepted from `source`."""
        text = self.logs[name].read_text(errors="replace")
        return len(re.findall(rf"Accepted publickey for root from {re.escape(source)} ", text))


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)


def _sshd(ns: str, name: str, addr: str, tmp: Path, pubkey: str,
          forwarding: bool) -> tuple[subprocess.Popen[bytes], Path, str]:
    d = tmp / name
    d.mkdir()
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_ed25519"))
    (d / "authorized_keys").write_text(pubkey)
    log = d / "sshd.log"
    (d / "sshd_config").write_text(
        f"ListenAddress {addr}:{PORT}\nHostKey {d / 'host_ed25519'}\nPidFile none\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        f"AllowTcpForwarding {'yes' if forwarding else 'no'}\nLogLevel {'DEBUG1' if forwarding else 'VERBOSE'}\n")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, SSHD, "-D", "-f", str(d / "sshd_config"), "-E", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    host_pub = " ".join((d / "host_ed25519.pub").read_text().split()[:2])
    return proc, log, f"[{addr}]:{PORT} {host_pub}\n"


def _wait_listening(log: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if log.exists() and "Server listening on" in log.read_text(errors="replace"):
            return
        assert proc.poll() is None, f"sshd exited: {log.read_text(errors='replace') if log.exists() else ''}"
        time.sleep(0.1)
    raise AssertionError(f"sshd did not listen: {log}")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    assert os.path.exists(SSHD), "openssh-server (sshd) is installed by `make setup` (tools/host/packages.txt)"
    tmp = tmp_path_factory.mktemp("bastion")
    tag = f"{os.getpid() % 100000}"
    ns_b, ns_t = f"rz-bastion-{tag}", f"rz-target-{tag}"
    links = [(f"rzh{tag}", f"rzb{tag}", ns_b, HERE, BASTION, None),  # this machine <-> bastion
             (f"rzbt{tag}", f"rzt{tag}", ns_t, BASTION_INNER, TARGET, ns_b)]  # bastion <-> target
    procs: list[subprocess.Popen[bytes]] = []
    unreachable = "198.18.0.4/30"
    used = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True, check=True).stdout
    assert "198.18.0." not in used, f"198.18.0.0/29 is in use on this machine:\n{used}"
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    try:
        for ns in (ns_b, ns_t):
            _run("ip", "netns", "add", ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        # no way from here to the target but through the bastion (and no packet leaves this machine)
        _run("ip", "route", "add", "unreachable", unreachable)
        for near, far, far_ns, near_addr, far_addr, near_ns in links:
            ip = ["ip"] + (["-n", near_ns] if near_ns else [])
            _run(*ip, "link", "add", near, "type", "veth", "peer", "name", far, "netns", far_ns)
            _run(*ip, "addr", "add", f"{near_addr}/30", "dev", near)
            _run(*ip, "link", "set", near, "up")
            _run("ip", "-n", far_ns, "addr", "add", f"{far_addr}/30", "dev", far)
            _run("ip", "-n", far_ns, "link", "set", far, "up")
        key = tmp / "client_ed25519"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        pub = (tmp / "client_ed25519.pub").read_text()
        known = tmp / "known_hosts"
        logs = {}
        for ns, name, addr, fwd in ((ns_b, "bastion", BASTION, True), (ns_t, "target", TARGET, False)):
            proc, log, line = _sshd(ns, name, addr, tmp, pub, fwd)
            procs.append(proc)
            _wait_listening(log, proc)
            with known.open("a") as f:
                f.write(line)
            logs[name] = log
        with socket.create_connection((BASTION, PORT), timeout=5):  # the bastion answers from here
            pass
        yield Net(tmp, key, known, logs)
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for cmd in (["ip", "route", "del", "unreachable", unreachable], ["ip", "netns", "del", ns_t],
                    ["ip", "netns", "del", ns_b]):
            subprocess.run(cmd, capture_output=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def here(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """This machine's verdicts (the target shares its kernel and files)."""
    junit = tmp_path_factory.mktemp("here") / "local.xml"
    cli("check", "--hosts", "local://", "--baseline", "isolation", "--quiet", "--junit", junit)
    return {c: s for (_, c), s in junit_statuses(junit).items()}


def _bastion_config(net: Net, with_jump: bool) -> Path:
    """The user's SSH config: the bastion's key, and (with_jump) the target's ProxyJump."""
    path = net.dir / ("ssh_config_jump" if with_jump else "ssh_config_bastion")
    text = f"Host {BASTION}\n  IdentityFile {net.client_key}\n  IdentitiesOnly yes\n"
    if with_jump:
        text += f"Host {TARGET}\n  ProxyJump root@{BASTION}:{PORT}\n  IdentityFile {net.client_key}\n"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_proxyjump_from_the_users_ssh_config(cli: Cli, net: Net, here: dict[str, str], tmp_path: Path) -> None:
    before = net.logins("target", BASTION_INNER)
    junit, sarif = tmp_path / "t.xml", tmp_path / "t.sarif"
    # no -i: the key, like the bastion, comes from the user's config
    res = cli("check", "--hosts", f"target=ssh://root@{TARGET}:{PORT}", "--baseline", "isolation",
              "--ssh-config", _bastion_config(net, with_jump=True), "--known-hosts", net.known_hosts,
              "--junit", junit, "--sarif", sarif)
    assert junit.exists(), res.stdout + res.stderr
    got = {c: s for (_, c), s in junit_statuses(junit).items()}
    assert got == here, res.stdout + res.stderr
    assert "error" not in got.values() and res.returncode in (0, 1), res.stdout + res.stderr
    # the target was reached from the bastion's side, over one connection
    assert net.logins("target", BASTION_INNER) == before + 1
    assert net.logins("bastion", HERE) >= 1
    assert f"target {TARGET} port {PORT}" in net.logs["bastion"].read_text(errors="replace")
    # the SARIF of a wheel-installed run, as GitHub code scanning demands it
    doc = json.loads(sarif.read_text())
    assert not github_sarif_problems(doc)
    assert not list(jsonschema.Draft4Validator(SARIF_SCHEMA).iter_errors(doc))
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]}
    assert uris == {"checks/catalogue.yaml"}  # in the installed package (RINGZERO), not the checkout


def test_without_the_users_config_the_target_is_unreachable(cli: Cli, net: Net) -> None:
    """The negative control: the same check without the bastion (what `-F ringzero's own file`
    used to do to every user) cannot reach the target."""
    res = cli("check", "--hosts", f"target=ssh://root@{TARGET}:{PORT}", "--baseline", "isolation", "--quiet",
              "-i", net.client_key, "--ssh-config", "none", "--known-hosts", net.known_hosts, "--timeout", "5")
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"target: cannot connect over SSH to ssh://root@{TARGET}:{PORT}" in res.stderr


def test_proxyjump_from_the_inventory(cli_ansible: Cli, net: Net, here: dict[str, str], tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[dmz]\n"
        f"target ansible_host={TARGET} ansible_port={PORT} ansible_user=root "
        f"ansible_ssh_private_key_file={net.client_key} "
        f"ansible_ssh_common_args='-o ProxyJump=root@{BASTION}:{PORT}'\n")
    before = net.logins("target", BASTION_INNER)
    junit = tmp_path / "inv.xml"
    # the user's config knows the bastion's key; the inventory says to jump through it
    res = cli_ansible("check", "--inventory", inventory, "--baseline", "isolation", "--ssh-config",
              _bastion_config(net, with_jump=False), "--known-hosts", net.known_hosts, "--junit", junit)
    assert junit.exists(), res.stdout + res.stderr
    got = {c: s for (_, c), s in junit_statuses(junit).items()}
    assert got == here, res.stdout + res.stderr
    assert net.logins("target", BASTION_INNER) == before + 1


def test_the_bastions_host_key_is_checked_too(cli: Cli, net: Net, tmp_path: Path) -> None:
    """ringzero's settings reach the ProxyJump hop: a bastion whose key is not pinned is refused."""
    only_target = tmp_path / "known_hosts"
    only_target.write_text("".join(line + "\n" for line in net.known_hosts.read_text().splitlines()
                                   if line.startswith(f"[{TARGET}]")))
    logins = net.logins("bastion", HERE), net.logins("target", BASTION_INNER)
    res = cli("check", "--hosts", f"target=ssh://root@{TARGET}:{PORT}", "--baseline", "isolation", "--quiet",
              "--ssh-config", _bastion_config(net, with_jump=True), "--known-hosts", only_target)
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"target: cannot connect over SSH to ssh://root@{TARGET}:{PORT}" in res.stderr
    # refused before logging in: neither sshd accepted anyone
    assert (net.logins("bastion", HERE), net.logins("target", BASTION_INNER)) == logins
