"""Turn a Topology into components: what the reference stack (and any other stack) runs.

Example, in a stack's ``__main__.py``::

    import pulumi
    from ringzero.stack import deploy, topology_from_config

    deployed = deploy(topology_from_config(pulumi.Config("ringzero"), base_dir="."))
    pulumi.export("vms", deployed.vm_outputs())
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gc
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from . import keyfiles
from .compliance import ComplianceCheck
from .host import HypervisorHost
from .image import BaseImage
from .keys import SshKeyPair
from .node import NodePolicies
from .paths import cache_dir
from .plan import host_settings, policies_plan
from .playbook import PlaybookRun
from .spec import BaseImageSpec, HostSpec, SpecError, Topology, from_data, to_manifest
from .spec import NodePolicies as NodePoliciesSpec
from .vm import VirtualMachine

SECTIONS = ("hosts", "images", "vms", "nodes")


def topology_from_config(config: pulumi.Config, base_dir: str | Path) -> Topology:
    """Read `ringzero:hosts|images|vms|nodes` from stack config; image paths may be relative.

    A bad value raises pulumi.RunError with ringzero's message (resource, field, value,
    allowed), so `pulumi preview` fails before anything changes and without a traceback.
    """
    data = {s: config.get_object(s) or [] for s in SECTIONS}
    try:
        resolve_image_paths(data["images"], base_dir)
        return from_data(data)
    except SpecError as e:
        raise pulumi.RunError(str(e)) from None


def waivers_from_config(value: str | None) -> str | list[Any] | None:
    """`ringzero:waivers` as ComplianceCheck takes it: a waivers file's path, or the list itself
    (stack config holds a YAML list as JSON text). Example, in Pulumi.<stack>.yaml::

        ringzero:waivers: waivers.yaml        # or a list of {control, hosts, reason, expires}
    """
    if value is None or not value.strip():
        return None
    if value.lstrip().startswith("["):
        items = json.loads(value)
        if not isinstance(items, list):
            raise pulumi.RunError("ringzero:waivers: expected a file path or a list of waivers")
        return items
    return value


def resolve_image_paths(images: list[Any], base_dir: str | Path) -> None:
    """Make the relative source/kernel/initrd paths of image entries absolute, in place.

    A relative path with a '..' component is refused before it is resolved (resolved, it
    would name any file outside the project and pass the spec's own check)."""
    base = Path(base_dir).resolve()
    for img in images:
        if isinstance(img, dict):
            for key in ("source", "kernel", "initrd"):
                value = img.get(key)
                if isinstance(value, str) and not value.startswith("/"):
                    if ".." in Path(value).parts:
                        raise SpecError("BaseImage", str(img.get("name", "?")), key, value,
                                        "a path inside the project (no '..' components) or an absolute path")
                    img[key] = str((base / value).resolve())


@dataclass
class Deployed:
    """The components a Topology became, by declared name."""

    topology: Topology
    access_key: SshKeyPair
    hosts: dict[str, HypervisorHost] = field(default_factory=dict)
    images: dict[tuple[str, str], BaseImage] = field(default_factory=dict)
    vms: dict[str, VirtualMachine] = field(default_factory=dict)
    policies: dict[str, NodePolicies] = field(default_factory=dict)  # by node: its policies, applied
    runs: dict[str, PlaybookRun] = field(default_factory=dict)  # by node: its NodePolicies' PlaybookRun
    compliance: ComplianceCheck | None = None

    def vm_outputs(self) -> dict[str, Any]:
        return {
            name: {
                "name": name,
                "host": vm.spec.host,
                "ssh_endpoint": vm.ssh_endpoint,
                "ssh_port": vm.ssh_port,
                "known_hosts": vm.known_hosts,
                "console_log": vm.console_log,
            }
            for name, vm in self.vms.items()
        }

    def compliance_outputs(self) -> dict[str, Any] | None:
        c = self.compliance
        if c is None:
            return None
        return {"passed": c.passed, "failed": c.failed, "errors": c.errors, "waived": c.waived, "score": c.score,
                "report": c.report_path, "sarif": c.sarif_path, "failures": c.failures, "notes": c.notes}

    def policy_outputs(self) -> dict[str, Any]:
        """Per node: the policies applied, what the apply changed, what it kept, drift, reboot,
        what best_effort Landlock rulesets could not enforce on the node's kernel, and each
        installed service's exposure score (`NodePolicies.exposure`)."""
        return {name: {"policies": n.policies, "changed": n.changed, "changes": n.changes,
                       "reboot_required": n.reboot_required, "kept": n.kept, "drift": n.drift,
                       "landlock_dropped": n.landlock_dropped, "exposure": n.exposure}
                for name, n in self.policies.items()}

    def manifest_json(self) -> str:
        return json.dumps(to_manifest(self.topology), sort_keys=True)


def key_dir(project: str, stack: str) -> Path:
    """Where versions before 2026-12-02 kept the key files of a stack's remote libvirt URIs for
    a run. Nothing is written there any more (see remote_uri); what a killed run of such a
    version left is removed by the next run (keyfiles.sweep_run_dirs: its owner is gone)."""
    return cache_dir() / "keys" / f"{project}-{stack}"


def _b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def ssh_uri_inline(host: HostSpec, private_key: str, known_hosts: str) -> str:
    """host.uri with the key and the pinned host key in it (`keydata`, `hostkey`: unpadded
    base64url, read by our build of the provider; tools/pulumi/libvirt/*inline-ssh*.patch).

    The provider is then configured from the state alone: plain `pulumi destroy` and
    `pulumi refresh` need no program run, and no key file exists for it. The URI is a
    Pulumi secret (ciphertext in the state, `[secret]` in previews; the provider's debug log
    prints it with `keydata=REDACTED`).
    """
    key = private_key if private_key.endswith("\n") else private_key + "\n"
    host_key = " ".join(known_hosts.split()[1:3])  # "<type> <base64>" of "[host]:port <type> <base64>"
    return f"{host.uri}?keydata={_b64url(key)}&hostkey={_b64url(host_key)}&sshauth=privkey"


def remote_uri(host: HostSpec, private_key: pulumi.Output[str], known_hosts: pulumi.Output[str]) -> pulumi.Output[str]:
    return pulumi.Output.secret(
        pulumi.Output.all(private_key, known_hosts).apply(lambda a: ssh_uri_inline(host, a[0], a[1])))


def _image_resource_name(img: BaseImageSpec) -> str:
    return f"{img.host}-{img.name}"


def node_connection(vm: VirtualMachine) -> dict[str, Any]:
    """How Ansible and the compliance suite reach a VM: its forward on 127.0.0.1 and pinned
    host key; `instance` (its disk) makes a rebuilt VM get its policies again."""
    return {"name": vm.spec.name, "host": "127.0.0.1", "port": vm.spec.ssh_port, "user": vm.spec.ssh_user,
            "known_hosts": vm.known_hosts, "instance": vm.disk.id}


# CPython's collector thresholds while a graph is declared and registered (gc.set_threshold).
GC_THRESHOLDS = (1_000_000, 10, 10)


@contextlib.contextmanager
def graph_declaration() -> Iterator[None]:
    """Declare a resource graph with the cyclic collector out of its way.

    The Pulumi SDK keeps ~350-480 tracked objects alive per declared resource (futures,
    tasks, contexts, closures, Outputs) until the engine has registered it, and a program
    declares its whole graph before any of it registers: a collection then traverses that
    live graph and finds almost nothing. With the default thresholds (700, 10, 10), at 1,000
    VMs (~4M live objects at the peak) 18 full collections took more time than the rest of
    the preview, more per resource the larger the graph (bench/preview_scale.py; README).

    So, for the rest of the program, the thresholds are raised to GC_THRESHOLDS (young
    collections every million allocations, full ones rarely); while the graph is declared
    the collector is paused, and then everything alive, the declared graph among it, is
    frozen (gc.freeze: left out of later collections; objects are still freed when their
    last reference goes, and cyclic garbage among them waits until the program ends, which
    its run does soon after).
    With thresholds alone, at 1,000 VMs three young collections in the declaration and one
    of the middle generation after it still traversed the graph (3.5 s of 23 s; none ran at
    100 VMs). A program's own higher thresholds, or a disabled collector, are left alone.
    """
    current = gc.get_threshold()
    if current[0] == 0 or not gc.isenabled():
        yield
        return
    gc.set_threshold(*(max(c, t) for c, t in zip(current, GC_THRESHOLDS, strict=True)))
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def deploy(
    topology: Topology, *, apply_policies: bool = True, compliance: bool = True, enforce_compliance: bool = True,
    waivers: str | Sequence[Mapping[str, Any]] | None = None,
) -> Deployed:
    """Every host, image, VM and node policy of `topology`, as Pulumi components.

    With `apply_policies`, each VM's policies become a NodePolicies component under the VM,
    applied by its PlaybookRun (Ansible) once the VM answers SSH; with `compliance`, one
    ComplianceCheck proves them all afterwards (failing the update on a failed check when
    `enforce_compliance`; `waivers`, a file or a list, excuse failures until they expire).
    The graph is declared with the garbage collector out of its way (graph_declaration).
    """
    with graph_declaration():
        return _declare(topology, apply_policies, compliance, enforce_compliance, waivers)


def _declare(topology: Topology, apply_policies: bool, compliance: bool, enforce_compliance: bool,
             waivers: str | Sequence[Mapping[str, Any]] | None) -> Deployed:
    access = SshKeyPair("access", comment=f"ringzero@{pulumi.get_stack()}")
    out = Deployed(topology=topology, access_key=access)
    # Hosts reached directly first, with their images and VMs; then hosts whose libvirtd
    # runs inside one of those VMs (what is placed on them waits until that VM is prepared).
    host_known_hosts: dict[str, pulumi.Output[str]] = {}  # the pinned host key of hosts reached over SSH
    keyfiles.sweep_run_dirs(key_dir(pulumi.get_project(), pulumi.get_stack()).parent)
    for via in (False, True):
        for h in topology.hosts:
            if (h.via_vm is not None) != via:
                continue
            if h.via_vm is None:
                out.hosts[h.name] = HypervisorHost(h.name, h)
            else:
                vm = out.vms[h.via_vm]
                host_known_hosts[h.name] = vm.known_hosts
                uri = remote_uri(h, access.private_key, vm.known_hosts)
                deps: list[pulumi.Resource] = [vm.ready] if vm.ready is not None else [vm]
                # the VM's own policies (its host preparation among them) are applied before
                # its libvirtd is used: the first connection starts libvirtd, whose QEMU
                # probe holds the KVM module that host preparation may have to reload
                node = next((n for n in topology.nodes if n.node == vm.spec.name and not n.is_empty), None)
                if apply_policies and node is not None:
                    deps.append(_node_policies(topology, out, node).run)
                out.hosts[h.name] = HypervisorHost(h.name, h, uri=uri, ready_after=deps)
            for img in (i for i in topology.images if i.host == h.name):
                out.images[(img.host, img.name)] = BaseImage(_image_resource_name(img), img, host=out.hosts[h.name])
            for spec in (v for v in topology.vms if v.host == h.name):
                host_key = SshKeyPair(f"{spec.name}-hostkey", comment=f"root@{spec.name}")
                out.vms[spec.name] = VirtualMachine(
                    spec.name, spec,
                    host=out.hosts[h.name],
                    image=out.images[(spec.host, spec.image)],
                    authorized_keys=[access.public_key],
                    host_key_private=host_key.private_key,
                    host_key_public=host_key.public_key,
                    access_private_key=access.private_key,
                    host_known_hosts=host_known_hosts.get(h.name),
                )
    if apply_policies:
        _apply_policies(topology, out, compliance, enforce_compliance, waivers)
    return out


def _node_policies(topology: Topology, out: Deployed, node: NodePoliciesSpec) -> NodePolicies:
    """The NodePolicies of `node` (made once; a VM hosting libvirtd gets its own earlier)."""
    if node.node in out.policies:
        return out.policies[node.node]
    vm = out.vms.get(node.node)
    if vm is None or vm.ready is None:
        raise pulumi.RunError(
            f"Node '{node.node}': ringzero applies policies over SSH to running VMs it declares with an "
            f"ssh_port; {node.node!r} is not one (apply to a host with the playbooks and `ringzero check`)"
        )
    try:  # planning refuses too (a service scoring above its max_exposure): fail preview with the message
        plan = policies_plan(node, host_settings(topology, node.node))
    except SpecError as e:
        raise pulumi.RunError(str(e)) from None
    applied = out.policies[node.node] = NodePolicies(
        node.node, node, plan=plan, connection=node_connection(vm),
        private_key=out.access_key.private_key, opts=pulumi.ResourceOptions(parent=vm, depends_on=[vm.ready]),
    )
    out.runs[node.node] = applied.run
    return applied


def _apply_policies(topology: Topology, out: Deployed, compliance: bool, enforce: bool,
                    waivers: str | Sequence[Mapping[str, Any]] | None) -> None:
    nodes: list[dict[str, Any]] = []
    for node in topology.nodes:
        if node.is_empty:
            continue
        _node_policies(topology, out, node)
        nodes.append(node_connection(out.vms[node.node]))
    if out.runs and compliance:
        out.compliance = ComplianceCheck(
            "compliance", manifest=out.manifest_json(), nodes=nodes, private_key=out.access_key.private_key,
            applied=[n.apply_id for n in out.policies.values()], enforce=enforce, waivers=waivers,
            opts=pulumi.ResourceOptions(depends_on=list(out.runs.values())),
        )


def allocations(topology: Topology) -> list[dict[str, Any]]:
    return [dataclasses.asdict(a) for a in topology.allocations]
