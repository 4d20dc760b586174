"""What a declared eBPF agent looks like on the node: its unit active inside the declared slice
(the plan installs and starts it), its programs attached, and, for the packaged tools ringzero
knows, a harmless command whose marker must then appear in the agent's output."""

from __future__ import annotations

from .spec import EbpfAgentSpec

# Packaged bpftrace tools ringzero knows how to trigger: a command that must appear in the
# tool's output (`{token}` is a fresh random marker). Each is harmless by construction: it
# prints, or opens / stats a file that does not exist, and changes nothing on the node.
TRIGGERS = {
    "execsnoop.bt": "/bin/echo ringzero-probe-{token}",
    "opensnoop.bt": "/bin/cat /tmp/ringzero-probe-{token}",
    "statsnoop.bt": "/usr/bin/stat /tmp/ringzero-probe-{token}",
}


def control_group_prefix(spec: EbpfAgentSpec) -> str:
    """The start of the agent unit's `ControlGroup` (`systemctl show`) when it runs in its slice."""
    return f"/{spec.slice}/"


def trigger(spec: EbpfAgentSpec) -> str | None:
    """The command whose marker the agent's output must show; None for tools ringzero cannot trigger."""
    return TRIGGERS.get(spec.tool or "")
