"""The e2e tier: the real engine boots real guests on this machine's libvirtd (TCG here).

Guests boot once per tier: the module-scoped `stack` fixture brings the e2e stack up and
every test reads from it; the last test destroys it. The stack has a passphrase of its own
(random), so that finding it anywhere on disk is a leak (see `find_secrets`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    passphrase: str = ""
    logs: dict[str, str] = field(default_factory=dict)  # output of the `pulumi` runs the secret scan reads

    def __repr__(self) -> str:
        # pytest prints the objects of a failed assertion: never the passphrase (also in project.env)
        return f"Stack({self.project.dir})"

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

    def own_key_copy(self) -> Path:
        """The test's own copy of the access key (Stack.guest), left out of the secret scan."""
        return self.workdir / "access_key"


def host_key_needles(stack: Stack) -> dict[str, bytes]:
    """The private lines of each VM's SSH host key: ringzero makes them and puts them in the
    VM's cloud-init seed, which pulumi-libvirt reads back on refresh."""
    state = json.loads(stack.project.pulumi("stack", "export", "--show-secrets").stdout)
    needles: dict[str, bytes] = {}
    for r in state["deployment"]["resources"]:
        if r["type"] != "pulumi-python:dynamic/ringzero:SshKeyPair" or not r["urn"].endswith("-hostkey"):
            continue
        key = r["outputs"]["private_key"]
        pem = json.loads(key["plaintext"]) if isinstance(key, dict) else key
        body = [line for line in pem.strip().splitlines() if not line.startswith("-----")]
        name = r["urn"].rsplit("::", 1)[1]
        needles.update({f"{name} PEM line {i + 1}": line.encode()
                        for i, line in enumerate(body) if i >= 2 and len(line) >= 40})
    assert needles, "no host key found in the state"
    return needles


# Larger files are the guest image, qcow2 overlays and Go binaries: never where a key is written.
SCAN_MAX_BYTES = 16 * 1024 * 1024
# ~/.cache/ringzero/go is the Go module and build cache of `make toolchain` (100k files, sources
# from the module proxy): nothing of a run is written there.
SCAN_SKIP_DIRS = {"go"}


def secret_needles(stack: Stack) -> dict[str, bytes]:
    """What must never be found on disk in plain text: the access key's private PEM lines and
    the passphrases (this stack's, and the checkout's `.pulumi/passphrase`)."""
    pem = stack.outputs()["access_private_key"].strip().splitlines()
    body = [line for line in pem if not line.startswith("-----")]
    # The first lines of every OpenSSH ed25519 key are alike (format header, then the public
    # key): the private scalar is in the later, full-length lines.
    needles = {f"access key PEM line {i + 1}": line.encode()
               for i, line in enumerate(body) if i >= 2 and len(line) >= 40}
    assert needles, "no private lines found in the access key"
    needles["the stack's passphrase"] = stack.passphrase.encode()
    checkout = ROOT / ".pulumi" / "passphrase"
    if checkout.exists() and checkout.read_text().strip():
        needles["the checkout's .pulumi/passphrase"] = checkout.read_text().strip().encode()
    return needles


def scan_roots(stack: Stack) -> list[Path]:
    """State, the project (logs, reports), Pulumi's home, ringzero's caches, the temp dirs, libvirt's logs."""
    cache = Path(os.environ.get("RINGZERO_CACHE", Path.home() / ".cache" / "ringzero"))
    roots = [Path(stack.project.env["PULUMI_BACKEND_URL"].removeprefix("file://")), stack.project.dir,
             Path(stack.project.env["PULUMI_HOME"]), cache, Path.home() / ".cache" / "ringzero",
             Path("/tmp"), Path(tempfile.gettempdir()), Path("/var/tmp"), Path("/var/log/libvirt"),
             Path.home() / ".ansible"]
    seen: list[Path] = []
    for r in roots:
        if r.exists() and r.resolve() not in seen:
            seen.append(r.resolve())
    return seen


def find_secrets(stack: Stack, needles: dict[str, bytes], *, texts: dict[str, str] | None = None) -> list[str]:
    """Where any needle is found in plain text: files under scan_roots (regular files only, not
    followed through links) and the given texts (a command's output, say). Empty is good."""
    found: set[str] = set()
    # The test's own key copy, and the checkout's passphrase file: the passphrase's home by design
    # (PULUMI_CONFIG_PASSPHRASE_FILE, made by `make setup`), found when the checkout is under /tmp.
    skip = {stack.own_key_copy(), (ROOT / ".pulumi" / "passphrase").resolve()}
    caches = {Path(os.environ.get("RINGZERO_CACHE", Path.home() / ".cache" / "ringzero")).resolve(),
              (Path.home() / ".cache" / "ringzero").resolve()}
    for root in scan_roots(stack):
        for dirpath, dirnames, filenames in os.walk(root):
            if Path(dirpath) in caches:
                dirnames[:] = [d for d in dirnames if d not in SCAN_SKIP_DIRS]
            for name in filenames:
                path = Path(dirpath) / name
                try:
                    st = os.lstat(path)
                    if not stat.S_ISREG(st.st_mode) or st.st_size > SCAN_MAX_BYTES or path in skip:
                        continue
                    data = path.read_bytes()
                except OSError:
                    continue
                found |= {f"{what} in {path}" for what, needle in needles.items() if needle in data}
    for label, text in (texts or {}).items():
        found |= {f"{what} in {label}" for what, needle in needles.items() if needle in text.encode()}
    return sorted(found)


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
    # A passphrase of this stack's own, given as users of PULUMI_CONFIG_PASSPHRASE do: the
    # stack is made again with it (nothing is encrypted with the engine tier's yet).
    passphrase = secrets.token_urlsafe(24)
    project.pulumi("stack", "rm", "--yes", "--force", "--preserve-config")
    project.env["PULUMI_CONFIG_PASSPHRASE"] = passphrase
    settings = project.dir / "Pulumi.test.yaml"
    kept = [ln for ln in settings.read_text().splitlines(True) if not ln.startswith("encryptionsalt:")]
    settings.write_text("".join(kept))
    subprocess.run(["pulumi", "stack", "init", project.stack, "--non-interactive"], cwd=project.dir, env=project.env,
                   check=True, capture_output=True, text=True)
    s = Stack(project, config, tmp, passphrase)
    try:
        yield s
    finally:
        # Leave nothing behind even when a test failed half way.
        project.pulumi("destroy", "--yes", check=False, timeout=900)
        # the remote host's key files for this throwaway stack (see ringzero.stack.key_dir)
        shutil.rmtree(key_dir("ringzero", project.stack), ignore_errors=True)
