"""A node's plan: what the `ringzero_node` Ansible module converges the node to.

The plan is derived from a node's specs (its section of the policy manifest) and carries
every rendered file plus the runtime actions those files need: AppArmor profiles to load in
their mode, slices to start, units to enable and restart when their files change, packages.
Playbooks get it as the extra var `ringzero_plan`. Example::

    plan = node_plan(topology, "vm1")
    plan["files"]["/etc/systemd/system/web.slice"]["content"]
"""

from __future__ import annotations

import functools
import hashlib
import json

from .paths import playbooks_dir
from .plan_schema import Feature, NodePlan, PlanFile
from .render import (
    KVM_PACKAGES,
    SYSTEMD_DIR,
    XEN_GRUB,
    XEN_PACKAGES,
    render_apparmor,
    render_ebpf,
    render_host_prep,
    render_seccomp,
    render_service,
    render_slice,
    slice_directives,
)
from .spec import HostSpec, NodePolicies, SpecError, Topology

# What each feature playbook selects from a plan (playbooks/<feature>.yml); site.yml takes all.
FEATURES = ("services", "slices", "apparmor", "seccomp", "ebpf", "host_prep")


def declared_host(topology: Topology, node: str) -> HostSpec | None:
    """The host declared with that name, or the host whose libvirtd runs inside that VM."""
    return next((h for h in topology.hosts if node in (h.name, h.via_vm)), None)


def host_settings(topology: Topology, node: str) -> HostSpec:
    """The HostSpec whose settings a node's host preparation uses: its declared host, else
    HostSpec defaults."""
    return declared_host(topology, node) or HostSpec(name=node)


def _unit_files(unit: str, files: dict[str, PlanFile]) -> list[str]:
    """The plan's files that change what `unit` runs: the unit, its drop-ins."""
    prefix = f"{SYSTEMD_DIR}/{unit}"
    return sorted(p for p in files if p == prefix or p.startswith(prefix + ".d/"))


def _timespan(usec: int) -> str:
    """A duration the way `systemctl show` prints it ("500ms", "1s", "1.500000s")."""
    if usec % 1_000_000 == 0:
        return f"{usec // 1_000_000}s"
    if usec < 1_000_000 and usec % 1000 == 0:
        return f"{usec // 1000}ms"
    return f"{usec / 1_000_000:.6f}s"


def shown_properties(directives: dict[str, str]) -> dict[str, str]:
    """The slice's directives as `systemctl show` reports them once in effect: the module
    compares these to find drift (a `systemctl set-property` override, say).

    systemd 252 resolves a percentage when it loads the unit (MemoryMax=50% becomes half the
    node's physical memory in bytes, TasksMax=10% a tenth of the node's task limit) and
    `systemctl show` prints that number, which depends on the node: such properties are left
    out here (the compliance checks compute them from the node's own figures). CPUWeight=idle
    is printed as "idle" and TasksMax=infinity as "infinity", as declared.
    """
    out: dict[str, str] = {}
    for key, value in directives.items():
        if key == "CPUQuota":
            out["CPUQuotaPerSecUSec"] = _timespan(int(value.rstrip("%")) * 10_000)
        elif value.endswith("%"):
            continue
        else:
            out[key] = value
    return out


def empty_plan(node: str) -> NodePlan:
    return {"node": node, "files": {}, "apparmor": [], "slices": [], "units": [], "packages": [], "hooks": [],
            "module_params": []}


def node_plan(topology: Topology, node: str) -> NodePlan:
    """The whole plan for `node`; every entry names its feature (playbooks can select some)."""
    policies = next((n for n in topology.nodes if n.node == node), None)
    if policies is None:
        raise SpecError("Node", node, "node", node, "a node declared under `nodes`")
    return policies_plan(policies, host_settings(topology, node))


def policies_plan(policies: NodePolicies, host: HostSpec) -> NodePlan:
    plan = empty_plan(policies.node)
    files: dict[str, PlanFile] = plan["files"]
    owned: dict[str, Feature] = {}  # unit -> feature that installs it
    adopted: set[str] = set()  # units declared with adopt: true
    confined: set[str] = set()

    def add(feature: Feature, rendered: dict[str, str], adopt: bool = False) -> None:
        # adopt: the node module may take over a file it did not create (saving the original).
        files.update({p: {"content": t, "mode": "0644", "feature": feature, "adopt": adopt}
                      for p, t in rendered.items()})

    for svc in policies.services:
        add("services", render_service(svc), adopt=svc.adopt)
        owned[svc.name] = "services"
        if svc.adopt:
            adopted.add(svc.name)
    for sl in policies.slices:
        add("slices", render_slice(sl))
        directives = dict(slice_directives(sl))
        plan["slices"].append({
            "unit": sl.name, "path": f"{SYSTEMD_DIR}/{sl.name}", "feature": "slices",
            "properties": directives, "expect": shown_properties(directives),
        })
        confined.update(sl.services)
    for ap in policies.apparmor:
        rendered = render_apparmor(ap)
        add("apparmor", rendered, adopt=ap.adopt)
        plan["apparmor"].append({"name": ap.name, "path": next(iter(rendered)), "mode": ap.mode, "feature": "apparmor",
                                 "adopt": ap.adopt})
    for sc in policies.seccomp:
        add("seccomp", render_seccomp(sc))
        confined.update(sc.services)
    programs: dict[str, list[str]] = {}
    for ag in policies.ebpf:
        add("ebpf", render_ebpf(ag))
        owned[ag.unit_name] = "ebpf"
        programs[ag.unit_name] = [ag.program_path] if ag.program is not None else []
    if policies.host_prep is not None:
        add("host_prep", render_host_prep(policies.host_prep, policies.node, host))
        plan["packages"] = list(KVM_PACKAGES if policies.host_prep == "kvm" else XEN_PACKAGES)
        if policies.host_prep == "kvm":
            # A loaded module keeps its old options: reload it (or say a reboot is needed).
            plan["module_params"] = [
                {"module": m, "param": "nested", "value": str(int(host.nested_virt)), "feature": "host_prep"}
                for m in ("kvm_intel", "kvm_amd")
            ]
        if policies.host_prep == "xen":
            plan["hooks"].append({
                "argv": ["/usr/sbin/update-grub"], "files": [XEN_GRUB], "reboot": True, "feature": "host_prep",
                "why": "Xen becomes the default boot entry with the next reboot",
            })
    for unit, feature in owned.items():
        unit_files = sorted(_unit_files(unit, files) + programs.get(unit, []))
        plan["units"].append({"unit": unit, "owned": True, "feature": feature, "files": unit_files,
                              "adopt": unit in adopted})
    for unit in sorted(confined - set(owned)):
        plan["units"].append({"unit": unit, "owned": False, "feature": "confined", "files": _unit_files(unit, files),
                              "adopt": False})
    return plan


def plan_hash(plan: NodePlan) -> str:
    """A content hash of the plan and of the playbooks that apply it (module code included)."""
    h = hashlib.sha256(json.dumps(plan, sort_keys=True).encode())
    h.update(_playbooks_digest().encode())
    return h.hexdigest()


@functools.cache
def _playbooks_digest() -> str:
    """The playbooks' content, hashed once per process (one program run declares many nodes)."""
    h = hashlib.sha256()
    root = playbooks_dir()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()
