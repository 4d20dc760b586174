"""The eBPF agent kind in the registry, and its part of a node's plan."""

from __future__ import annotations

from ...spec.host import HostSpec
from ...spec.node import NodePolicies
from ..base import Kind, PlanParts
from .checks import checks
from .render import render_ebpf
from .spec import EbpfAgentSpec


def plan(parts: PlanParts, spec: EbpfAgentSpec) -> None:
    """The unit and its program; the agent restarts when either changes."""
    parts.add("ebpf", render_ebpf(spec))
    parts.own(spec.unit_name, "ebpf", programs=[spec.program_path] if spec.program is not None else [])


def _declared(policies: NodePolicies, _host: HostSpec) -> tuple[EbpfAgentSpec, ...]:
    return policies.ebpf


def _output(spec: EbpfAgentSpec) -> list[tuple[str, str]]:
    return [] if spec.output == "journal" else [(spec.output, f"EbpfAgent {spec.name!r} (its output)")]


KIND: Kind[EbpfAgentSpec] = Kind(
    name="ebpf", feature="ebpf", declared=_declared, render=render_ebpf, plan=plan, checks=checks,
    owner=lambda s: f"EbpfAgent {s.name!r}", also_writes=_output,
)
