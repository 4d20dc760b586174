"""SshReady: `pulumi up` waits until a VM answers SSH (host key pinned) and has booted.

A dynamic resource: create/update poll `ssh true` against the VM's forwarded port with
StrictHostKeyChecking=yes and a known_hosts holding only the host key ringzero generated
for that VM; on timeout the error names the VM and its console log.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dyn

from . import keyfiles
from .dynamic import DYNAMIC_ALIASES

DEFAULT_TIMEOUT_S = 300


def known_hosts_line(host: str, port: int, public_key: str) -> str:
    key = " ".join(public_key.split()[:2])  # type and base64, without the comment
    return f"[{host}]:{port} {key}" if port != 22 else f"{host} {key}"


def ssh_options(key_file: str, known_hosts: str, port: int) -> list[str]:
    return [
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR", "-i", key_file, "-p", str(port),
    ]


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(cannot read it here: {e.strerror})"


def wait_for_ssh(props: dict[str, Any]) -> float:
    """Seconds until `ssh user@host true` succeeded; raises with the console log on timeout."""
    host, port, user = str(props["host"]), int(props["port"]), str(props["user"])
    timeout = int(props.get("timeout_s") or DEFAULT_TIMEOUT_S)
    # the key exists only inside this 0700 directory, for this wait (see ringzero.keyfiles)
    with keyfiles.private_tempdir("ringzero-ssh-") as tmp:
        key = str(keyfiles.write_key(tmp / "id", str(props["private_key"])))
        kh = str(keyfiles.write_secret(tmp / "known_hosts",
                                       known_hosts_line(host, port, str(props["host_public_key"])) + "\n"))
        start = time.monotonic()
        last = ""
        while time.monotonic() - start < timeout:
            res = subprocess.run(
                ["ssh", *ssh_options(key, kh, port), f"{user}@{host}", "true"],
                capture_output=True, text=True, timeout=30,
            )
            if res.returncode == 0:
                # SSH answers; now wait for the boot to finish: cloud-init restarts sshd while
                # it installs the host keys (a connection then is reset: ssh exits 255, so ask
                # again), and socket-activated services such as libvirtd come up late.
                while time.monotonic() - start < timeout:
                    left = max(10, int(timeout - (time.monotonic() - start)))
                    booted = subprocess.run(
                        ["ssh", *ssh_options(key, kh, port), f"{user}@{host}",
                         f"timeout {left} systemctl is-system-running --wait"],
                        capture_output=True, text=True, timeout=left + 30,
                    )
                    if booted.returncode != 255:  # running, or degraded: start-up is over
                        return time.monotonic() - start
                    last = booted.stderr.strip()
                    time.sleep(2)
                break
            last = res.stderr.strip()
            if "REMOTE HOST IDENTIFICATION HAS CHANGED" in last or "Host key verification failed" in last:
                break  # a different host key answers: never retry past that
            time.sleep(2)
    raise RuntimeError(
        f"VirtualMachine '{props['vm']}': SSH on {host}:{port} did not answer as {user} with the pinned host key "
        f"within {timeout} s (last error: {last or 'none'}). Console log: {props['console_log']}\n"
        f"{_tail(str(props['console_log']))}"
    )


class SshReadyProvider(dyn.ResourceProvider):
    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        waited = wait_for_ssh(props)
        return dyn.CreateResult(id_=f"{props['vm']}@{props['host']}:{props['port']}",
                                outs={**props, "waited_s": round(waited, 1)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        keys = ("vm", "host", "port", "user", "host_public_key", "domain_id", "console_log", "boots")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        return dyn.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(outs={**news, "waited_s": round(wait_for_ssh(news), 1)})

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        return dyn.ReadResult(id_=id_, outs=props)


class SshReady(dyn.Resource, module="ringzero", name="SshReady"):
    """Done once `vm` answers SSH on host:port with the pinned host key; waited for again when
    `boots` (GuestLifecycle's count of the restarts it made) changes."""

    waited_s: pulumi.Output[float]

    def __init__(
        self, name: str, *, vm: str, host: str, port: int, user: str,
        private_key: pulumi.Input[str], host_public_key: pulumi.Input[str],
        domain_id: pulumi.Input[str], console_log: str, timeout_s: int = DEFAULT_TIMEOUT_S,
        boots: pulumi.Input[int] | None = None, opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["private_key"],
                                                                         aliases=DYNAMIC_ALIASES))
        super().__init__(
            SshReadyProvider(), name,
            {
                "vm": vm, "host": host, "port": port, "user": user,
                "private_key": pulumi.Output.secret(private_key), "host_public_key": host_public_key,
                "domain_id": domain_id, "console_log": console_log, "timeout_s": timeout_s,
                "boots": boots, "waited_s": None,
            },
            opts,
        )
