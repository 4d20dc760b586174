"""The eBPF agent kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ..base import Kind, PlanParts
from .checks import checks
from .render import render_ebpf
from .spec import EbpfAgentSpec


def plan(parts: PlanParts, spec: EbpfAgentSpec) -> None:
    """The unit and its program; the agent restarts when either changes."""
    parts.add("ebpf", render_ebpf(spec))
    parts.own(spec.unit_name, "ebpf", programs=[spec.program_path] if spec.program is not None else [])


def _output(spec: EbpfAgentSpec) -> list[tuple[str, str]]:
    return [] if spec.output == "journal" else [(spec.output, f"EbpfAgent {spec.name!r} (its output)")]


KIND: Kind[EbpfAgentSpec] = Kind(
    name="ebpf", feature="ebpf",
    declared=lambda policies, _host: policies.ebpf,
    render=render_ebpf, plan=plan, checks=checks,
    owner=lambda s: f"EbpfAgent {s.name!r}", also_writes=_output,
)
