"""A node with many declared policies, for the kernel tier's scale test and bench/apply_scale.py:
a mix of workload services, slices that hold them, seccomp filters on them and AppArmor profiles
(enforce and complain), plus the floor a plan is measured against: one shell script that makes
the same writes, reloads, loads and restarts, with nothing to compare, record or report.

    policies = scale_policies("vm1", 500)     # 25 services, 25 slices, 400 seccomp, 50 AppArmor
    script = floor_apply_script(policies_plan(policies, HostSpec("vm1")))
"""

from __future__ import annotations

import shlex

from ringzero.plan_schema import NodePlan
from ringzero.spec import (
    AppArmorProfileSpec,
    FileRule,
    NodePolicies,
    SeccompProfileSpec,
    ServiceSpec,
    SliceSpec,
    SyscallRule,
)


def scale_policies(node: str, n: int) -> NodePolicies:
    """`n` policies: 5% services, 5% slices (each holding one service), 10% AppArmor profiles
    (every third in complain), the rest seccomp filters (the first one per service confines
    it, the others are profiles for kubelet and runtimes).

    Units are the expensive part on a node (every `systemctl enable` reloads systemd: with 250
    units in the mix, a first apply under TCG took over 13 minutes), so the mix keeps them few."""
    services = max(1, n // 20)
    slices = services
    apparmor = max(1, n // 10)
    seccomp = n - services - slices - apparmor
    svc = [ServiceSpec(f"rzscale{i}.service", exec_start="/usr/bin/sleep infinity",
                       description=f"scale workload {i}") for i in range(services)]
    return NodePolicies(
        node,
        services=tuple(svc),
        slices=tuple(SliceSpec(f"rzscale{i}.slice", description=f"scale slice {i}", cpu_weight=100 + i % 100,
                               memory_max=f"{256 + i % 64}M", tasks_max=64,
                               services=(svc[i].name,) if i < services else ())
                     for i in range(slices)),
        seccomp=tuple(SeccompProfileSpec(f"rzscale{i}", default_action="SCMP_ACT_ALLOW",
                                         rules=(SyscallRule(("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", "EPERM"),),
                                         services=(svc[i].name,) if i < services else ())
                      for i in range(seccomp)),
        apparmor=tuple(AppArmorProfileSpec(f"rzscale{i}", mode="complain" if i % 3 == 2 else "enforce",
                                           attach=f"/usr/local/bin/rzscale{i}",
                                           files=(FileRule("/etc/hostname", "r"), FileRule("/etc/shadow", "r", True)))
                       for i in range(apparmor)),
    )


def _units(plan: NodePlan) -> tuple[list[str], list[str]]:
    owned = [u["unit"] for u in plan["units"] if u["owned"]]
    return owned, [s["unit"] for s in plan["slices"]]


def floor_apply_script(plan: NodePlan) -> str:
    """The plan's effect as one plain script: write every file, one daemon-reload, load the
    profiles (one apparmor_parser per mode), enable and start the slices, enable and restart
    the units. What a hand-written script would do; no checks, no ledger, no drift."""
    lines = ["set -e", "umask 022"]
    for d in sorted({p.rsplit("/", 1)[0] for p in plan["files"]}):
        lines.append(f"mkdir -p {shlex.quote(d)}")
    for path, f in sorted(plan["files"].items()):
        body = f["content"] if f["content"].endswith("\n") else f["content"] + "\n"
        lines.append(f"cat > {shlex.quote(path)} <<'RZ_EOF'\n{body}RZ_EOF")
    lines.append("systemctl daemon-reload")
    for mode, flag in (("enforce", ""), ("complain", " -C")):
        paths = [p["path"] for p in plan["apparmor"] if p["mode"] == mode]
        if paths:
            lines.append(f"apparmor_parser -r -W{flag} " + " ".join(map(shlex.quote, paths)))
    owned, slices = _units(plan)
    if slices:
        lines.append("systemctl enable --now " + " ".join(slices))
    if owned:
        lines.append("systemctl enable " + " ".join(owned))
        lines.append("systemctl restart " + " ".join(owned))
    return "\n".join(lines) + "\n"


def floor_remove_script(plan: NodePlan) -> str:
    """Undo floor_apply_script (so that the module, next, finds a node it owns nothing on)."""
    owned, slices = _units(plan)
    lines = []
    if owned:
        lines.append("systemctl disable --now " + " ".join(owned) + " || true")
    if slices:
        lines.append("systemctl disable --now " + " ".join(slices) + " || true")
    for p in plan["apparmor"]:
        lines.append(f"apparmor_parser -R {shlex.quote(p['path'])} 2>/dev/null || true")
    lines.append("rm -f " + " ".join(shlex.quote(p) for p in sorted(plan["files"])))
    dirs = sorted({p.rsplit("/", 1)[0] for p in plan["files"]}, key=len, reverse=True)
    lines.append("rmdir " + " ".join(shlex.quote(d) for d in dirs) + " 2>/dev/null || true")
    lines.append("systemctl daemon-reload")
    return "\n".join(lines) + "\n"
