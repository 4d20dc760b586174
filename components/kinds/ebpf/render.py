"""An eBPF agent's files: its service unit and, for inline programs, the bpftrace script."""

from __future__ import annotations

from ...render import SYSTEMD_DIR, render
from .spec import EbpfAgentSpec


def ebpf_exec(spec: EbpfAgentSpec) -> tuple[list[str], str]:
    """(ExecStartPre= lines, ExecStart=) for the agent's service."""
    if spec.output == "journal":
        return [], f"/usr/bin/bpftrace -B line {spec.program_path}"
    directory = spec.output.rsplit("/", 1)[0] or "/"
    return [f"/bin/mkdir -p {directory}"], f"/usr/bin/bpftrace -B line -o {spec.output} {spec.program_path}"


def render_ebpf(spec: EbpfAgentSpec) -> dict[str, str]:
    pre, exec_start = ebpf_exec(spec)
    files = {
        f"{SYSTEMD_DIR}/{spec.unit_name}": render(
            "etc/systemd/system/ebpf-agent.service.j2", spec=spec, pre=pre, exec_start=exec_start
        )
    }
    if spec.program is not None:
        header = f"// Managed by ringzero: EbpfAgent {spec.name}.\n"
        files[spec.program_path] = header + spec.program.rstrip("\n") + "\n"
    return files
