"""SshReady's wait: bounded, and its error names the VM, the endpoint and the console log."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ringzero.keys import generate_ed25519
from ringzero.ssh import known_hosts_line, wait_for_ssh


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_timeout_names_vm_endpoint_and_console_log(tmp_path: Path) -> None:
    console = tmp_path / "vm9-console.log"
    console.write_text("[    8.1] systemd[1]: Reached target basic.target\nKernel panic - not syncing\n")
    key, host = generate_ed25519("t"), generate_ed25519("root@vm9")
    port = _closed_port()
    with pytest.raises(RuntimeError) as err:
        wait_for_ssh({"vm": "vm9", "host": "127.0.0.1", "port": port, "user": "root",
                      "private_key": key["private_key"], "host_public_key": host["public_key"],
                      "console_log": str(console), "timeout_s": 3})
    msg = str(err.value)
    assert f"VirtualMachine 'vm9': SSH on 127.0.0.1:{port} did not answer" in msg
    assert "within 3 s" in msg and f"Console log: {console}" in msg
    assert "Kernel panic - not syncing" in msg  # the log's last lines come with it


def test_known_hosts_line_pins_the_port() -> None:
    assert known_hosts_line("127.0.0.1", 2201, "ssh-ed25519 AAAA root@vm1") == "[127.0.0.1]:2201 ssh-ed25519 AAAA"
    assert known_hosts_line("h", 22, "ssh-ed25519 AAAA c") == "h ssh-ed25519 AAAA"
