"""How the resource graph grows with the declaration: 100 vs 1,000 VMs, under mocks.

Each size runs in its own process (a fresh Pulumi runtime): 20 hosts, N VMs, 5 policies
per VM (2 slices, an AppArmor profile, a seccomp profile, an eBPF agent). Prints the wall
time (the median of 5 runs, each in a fresh process, the sizes alternating), the process's
CPU time of the same runs, and peak Python memory per resource at both sizes, and their
ratios (1.0 = linear).

    .venv/bin/python bench/preview_scale.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOSTS = 20
REPEATS = 5


def topology(n_vms: int) -> Any:
    from ringzero.spec import (
        AppArmorProfileSpec,
        BaseImageSpec,
        EbpfAgentSpec,
        FileRule,
        HostSpec,
        NodePolicies,
        SeccompProfileSpec,
        SliceSpec,
        SyscallRule,
        Topology,
        VmSpec,
    )

    hosts = tuple(HostSpec(f"h{i}", vcpus=256, memory_mib=1024 * 1024) for i in range(HOSTS))
    images = tuple(BaseImageSpec("debian", h.name, "/srv/base.qcow2", kernel="/srv/vmlinuz") for h in hosts)
    vms = tuple(VmSpec(f"vm{i}", f"h{i % HOSTS}", "debian", memory_mib=512, ssh_port=10000 + i) for i in range(n_vms))
    nodes = tuple(
        NodePolicies(
            vm.name,
            slices=(SliceSpec("web.slice", cpu_weight=200, memory_max="512M"), SliceSpec("web-api.slice")),
            apparmor=(AppArmorProfileSpec("app", attach="/usr/bin/app", files=(FileRule("/srv/**", "r"),)),),
            seccomp=(SeccompProfileSpec("no-mkdir", "SCMP_ACT_ALLOW",
                                        rules=(SyscallRule(("mkdir",), "SCMP_ACT_ERRNO"),)),),
            ebpf=(EbpfAgentSpec("exec", program="tracepoint:syscalls:sys_enter_execve { @[comm] = count(); }"),),
        )
        for vm in vms
    )
    return Topology(hosts=hosts, images=images, vms=vms, nodes=nodes)


def measure(n_vms: int, trace_memory: bool) -> dict[str, float]:
    import pulumi

    class Mocks(pulumi.runtime.Mocks):
        count = 0

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            Mocks.count += 1
            outs = dict(args.inputs)
            if args.typ == "pulumi-python:dynamic/ringzero:SshKeyPair":
                outs.update(private_key="k", public_key="ssh-ed25519 AAAA x", fingerprint="f")
            return f"{args.name}-id", outs

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            return {}, None

    pulumi.runtime.set_mocks(Mocks(), project="bench", stack="bench", preview=True)
    from ringzero.stack import deploy

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def build() -> None:
        deploy(topology(n_vms))

    # tracemalloc slows Python several times over: time and memory come from separate runs.
    if trace_memory:
        tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    build()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
    return {"vms": n_vms, "resources": Mocks.count, "seconds": elapsed, "cpu_seconds": cpu, "peak_bytes": peak}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        print(json.dumps(measure(int(sys.argv[2]), sys.argv[3] == "memory")))
        return

    def one(n: int, what: str) -> dict[str, float]:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), what], capture_output=True, text=True,
                             check=True)
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    # time: the median of 5 fresh processes per size, the sizes alternating (a single run at
    # 100 VMs, ~2 s, varies by a fifth from run to run); memory: one run each (deterministic)
    timed: dict[int, list[dict[str, float]]] = {100: [], 1000: []}
    for _ in range(REPEATS):
        for n in timed:
            timed[n].append(one(n, "time"))
    rows = []
    for n, runs in timed.items():
        row = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
        row["cpu_seconds"] = sorted(r["cpu_seconds"] for r in runs)[len(runs) // 2]
        row["peak_bytes"] = one(n, "memory")["peak_bytes"]
        rows.append(row)
        print(f"{n} VMs: " + ", ".join(f"{r['seconds']:.2f} s ({r['cpu_seconds']:.2f} s CPU)" for r in runs),
              file=sys.stderr)
    print(f"{'VMs':>6} {'resources':>10} {'seconds':>9} {'ms/resource':>12} {'KiB/resource':>13}")
    for r in rows:
        print(f"{r['vms']:>6} {r['resources']:>10} {r['seconds']:>9.2f} "
              f"{1000 * r['seconds'] / r['resources']:>12.3f} {r['peak_bytes'] / 1024 / r['resources']:>13.1f}")
    small, large = rows
    t_ratio = (large["seconds"] / large["resources"]) / (small["seconds"] / small["resources"])
    c_ratio = (large["cpu_seconds"] / large["resources"]) / (small["cpu_seconds"] / small["resources"])
    m_ratio = (large["peak_bytes"] / large["resources"]) / (small["peak_bytes"] / small["resources"])
    print(f"per-resource ratio 1000/100: time {t_ratio:.2f}x (CPU time {c_ratio:.2f}x), memory {m_ratio:.2f}x "
          "(1.0 = linear growth)")


if __name__ == "__main__":
    main()
