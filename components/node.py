"""NodePolicies: one node's kernel policies, applied to it by one Ansible run, as one component.

What `pulumi preview` shows under a VM is what will happen on it::

    ringzero:index:VirtualMachine                       vm1
      ringzero:index:NodePolicies                       vm1            its declared policies ...
        pulumi-python:dynamic/ringzero:PlaybookRun      vm1-policies   ... converged by one module run

The component owns the node's `PlaybookRun` and exposes what the apply did (`changed`,
`changes`, `reboot_required`, `kept`, `drift`) with the policies it applied (`policies`:
`slice:web.slice`, `apparmor:ringzero-web`, ... as the check ids name them). Example::

    node = NodePolicies("vm1", spec, plan=policies_plan(spec, host), connection=node_connection(vm),
                        private_key=access.private_key, opts=pulumi.ResourceOptions(parent=vm, depends_on=[vm.ready]))
    pulumi.export("vm1", {"policies": node.policies, "reboot_required": node.reboot_required})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi

from .kinds.service.exposure import ScoringUnavailable, exposures
from .playbook import PlaybookRun
from .spec import NodePolicies as NodePoliciesSpec

if TYPE_CHECKING:
    from .plan_schema import NodePlan

# what PlaybookRun was before its type had a name (see ringzero.dynamic)
_UNNAMED_DYNAMIC = "pulumi-python:dynamic:Resource"


def policy_names(spec: NodePoliciesSpec) -> list[str]:
    """The node's policies as `kind:name`, the subjects of their checks (`vm1::slice:web.slice::…`)."""
    names = [f"service:{s.name}" for s in spec.services]
    names += [f"slice:{s.name}" for s in spec.slices]
    names += [f"apparmor:{p.name}" for p in spec.apparmor]
    names += [f"seccomp:{p.name}" for p in spec.seccomp]
    names += [f"ebpf:{a.name}" for a in spec.ebpf]
    names += [f"namespaces:{n.name}" for n in spec.namespaces]
    names += [f"fsview:{v.name}" for v in spec.fsviews]
    names += [f"landlock:{r.name}" for r in spec.landlock]
    names += [f"firewall:{f.name}" for f in spec.firewall]
    names += [f"sockfilter:{f.name}" for f in spec.sockfilter]
    if spec.host_prep is not None:
        names.append(f"host:{spec.host_prep}")
    return names


class NodePolicies(pulumi.ComponentResource):
    """A node's policies (`ringzero.spec.NodePolicies`) applied by its PlaybookRun, a child.

    `plan` is the node's plan (`ringzero.plan.policies_plan`); `connection` how Ansible reaches
    the node (`ringzero.stack.node_connection`). Outputs: `policies`, `changed`, `changes`,
    `reboot_required`, `kept`, `drift`, `landlock_dropped`, `exposure` (each installed service's `systemd-analyze
    security` score with the plan's drop-ins, scored offline where the program runs; {} where
    systemd-analyze is missing, which a service declaring max_exposure refuses at plan time),
    and `apply_id` (new with every apply: a ComplianceCheck takes it to run again after one)."""

    TYPE = "ringzero:index:NodePolicies"

    def __init__(
        self, name: str, spec: NodePoliciesSpec, *, plan: NodePlan, connection: pulumi.Input[dict[str, Any]],
        private_key: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.spec = spec
        self.node = spec.node
        former = opts.parent if opts is not None else None
        # Stacks written before this component existed hold the PlaybookRun directly under the
        # node's VM (this component's parent), some still under its unnamed dynamic type: the
        # aliases make Pulumi carry it over in place (no replacement, no second apply).
        aliases: list[pulumi.Input[str | pulumi.Alias]] = []
        if former is not None:
            aliases = [pulumi.Alias(parent=former), pulumi.Alias(parent=former, type_=_UNNAMED_DYNAMIC)]
        # the component's dependencies (the VM answering SSH) are its run's: Pulumi does not
        # hand a component's depends_on down to its children
        self.run = PlaybookRun(f"{spec.node}-policies", node=connection, private_key=private_key, plan=plan,
                               opts=pulumi.ResourceOptions(parent=self, aliases=aliases,
                                                           depends_on=opts.depends_on if opts else None))
        names = policy_names(spec)
        # resolved with the run: after `pulumi up` these are the policies the node has
        self.policies: pulumi.Output[list[str]] = self.run.apply_id.apply(lambda _: names)
        self.apply_id = self.run.apply_id
        self.changed = self.run.changed
        self.changes = self.run.changes
        self.reboot_required = self.run.reboot_required
        self.kept = self.run.kept
        # what best_effort Landlock rulesets could not enforce on this node's kernel
        self.landlock_dropped = self.run.landlock_dropped
        self.drift = self.run.drift
        try:
            scores = exposures(spec, plan)
        except ScoringUnavailable as e:  # no service declares max_exposure (the plan was refused otherwise)
            pulumi.log.warn(f"node {spec.node}: services not scored for exposure: {e}", resource=self)
            scores = {}
        self.exposure: dict[str, float] = {unit: s.exposure for unit, s in scores.items()}
        self.register_outputs({"node": spec.node, "policies": self.policies, "changed": self.changed,
                               "changes": self.changes, "rebootRequired": self.reboot_required,
                               "kept": self.kept, "drift": self.drift, "landlockDropped": self.landlock_dropped,
                               "exposure": self.exposure})
