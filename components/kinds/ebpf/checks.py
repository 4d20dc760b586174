"""Checks for EbpfAgent: the agent runs in its slice, its BPF programs are attached, and a
triggered action shows up in its output."""

from __future__ import annotations

import secrets
import time

from ...checks.base import Check, expect_equal
from ...checks.probe import Probe
from ...facts import bpf_attachments
from .expect import control_group_prefix, trigger
from .spec import EbpfAgentSpec

# Every probe command runs under Probe.run's timeout, and the loops below stop at their deadlines.
EVENT_TIMEOUT_S = 20
ATTACH_GRACE_S = 60


def _active(node: str, spec: EbpfAgentSpec) -> Check:
    def verify(p: Probe) -> None:
        unit = p.unit(spec.unit_name)
        expect_equal(f"{spec.unit_name} ActiveState", "active", unit.get("ActiveState"))
        cgroup = unit.get("ControlGroup", "")
        if not cgroup.startswith(control_group_prefix(spec)):
            raise AssertionError(f"{spec.unit_name} runs in {cgroup!r}, not in {spec.slice}")

    return Check(node, f"ebpf:{spec.name}", "active", verify, (f"unit:{spec.unit_name}",),
                 f"{spec.unit_name} is active in {spec.slice}")


def _attached(node: str, spec: EbpfAgentSpec) -> Check:
    def verify(p: Probe) -> None:
        pid = int(p.unit(spec.unit_name).get("MainPID") or 0)
        if not pid:
            raise AssertionError(f"{spec.unit_name} has no main process")
        perf = p.value("bpftool:")
        deadline = time.monotonic() + ATTACH_GRACE_S
        # an agent that (re)started moments ago may still be compiling its program
        while not bpf_attachments(perf).get(pid) and time.monotonic() < deadline:
            time.sleep(1)
            perf = str(p.run("bpftool -j perf").stdout)
        if not bpf_attachments(perf).get(pid):
            raise AssertionError(f"no BPF program is attached by {spec.unit_name}'s process {pid} (bpftool perf)")

    return Check(node, f"ebpf:{spec.name}", "bpf-attached", verify, (f"unit:{spec.unit_name}", "bpftool:"),
                 "its BPF programs are loaded and attached")


def _event(node: str, spec: EbpfAgentSpec, command: str) -> Check:
    def output(p: Probe) -> str:
        if spec.output == "journal":
            return str(p.run("journalctl -q -o cat -u %s -n 200", spec.unit_name).stdout)
        return str(p.run("tail -n 200 %s", spec.output).stdout)

    def verify(p: Probe) -> None:
        token = secrets.token_hex(6)
        marker = f"ringzero-probe-{token}"
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while True:
            p.run(command.format(token=token))
            if marker in output(p):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{marker} (from `{command.format(token=token)}`) did not appear in {spec.output} "
                    f"within {EVENT_TIMEOUT_S} s")
            time.sleep(1)

    return Check(node, f"ebpf:{spec.name}", "event", verify, (), "a triggered action appears in its output")


def checks(node: str, spec: EbpfAgentSpec) -> list[Check]:
    out = [_active(node, spec), _attached(node, spec)]
    command = trigger(spec)
    if command is not None:
        out.append(_event(node, spec, command))
    return out
