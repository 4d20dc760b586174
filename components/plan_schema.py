"""The node plan's types: what `ringzero.plan.node_plan` builds and the `ringzero_node` module
converges a node to. `ringzero.schema` generates `schemas/plan-v1.json` (and the node module's
validator table) from these. Example::

    plan: NodePlan = node_plan(topology, "vm1")
    plan["slices"][0]["properties"]["MemoryMax"]
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

# The features a plan entry belongs to (playbooks/<feature>.yml apply one; site.yml all).
Feature = Literal["services", "slices", "apparmor", "seccomp", "ebpf", "host_prep", "namespaces", "fsview",
                  "landlock", "firewall", "sockfilter"]
# A unit is "confined" when the plan only places it in a slice or under a seccomp filter.
UnitFeature = Literal["services", "slices", "apparmor", "seccomp", "ebpf", "host_prep", "namespaces", "fsview",
                      "landlock", "firewall", "sockfilter", "confined"]


class PlanFile(TypedDict):
    """A file the module writes: its whole content and mode; `adopt` lets it take over a file
    it did not create (the original saved and restored on removal)."""

    content: str
    mode: str
    feature: Feature
    adopt: bool


class PlanAppArmor(TypedDict):
    """A profile to load from `path` in `mode` (enforce or complain)."""

    name: str
    path: str
    mode: str
    feature: Feature
    adopt: bool


class PlanSlice(TypedDict):
    """A slice to start; `properties` are its directives, `expect` what `systemctl show`
    prints once they are in effect (drift is a difference)."""

    unit: str
    path: str
    feature: Feature
    properties: dict[str, str]
    expect: dict[str, str]


class PlanUnit(TypedDict):
    """A unit to enable and (re)start when one of `files` changed; `owned` when the plan
    installs it, else it is only confined (restarted if running)."""

    unit: str
    owned: bool
    feature: UnitFeature
    files: list[str]
    adopt: bool


class PlanHook(TypedDict):
    """A command to run when one of `files` changed; `reboot`: it takes effect after a reboot."""

    argv: list[str]
    files: list[str]
    reboot: bool
    feature: Feature
    why: str


class PlanModuleParam(TypedDict):
    """A kernel module option (/sys/module/<module>/parameters/<param>) to converge."""

    module: str
    param: str
    value: str
    feature: Feature


class PlanLandlock(TypedDict):
    """A Landlock ruleset the node must be able to enforce: `needs` is each handled right and the
    Landlock ABI it needs. Before changing anything the module reads the node's ABI: a `strict`
    ruleset it cannot enforce fails the run naming the missing rights; a `best_effort` one is
    applied and what the node drops is returned (`landlock_dropped`)."""

    name: str
    ruleset: str
    mode: str
    needs: dict[str, int]
    feature: Feature


class NodePlan(TypedDict):
    """One node's whole plan: files by path, then what they need at run time. `owner` names
    who owns what it puts on the node (the declaring stack, "project/stack/node"); without it,
    the node's name."""

    node: str
    owner: NotRequired[str]
    files: dict[str, PlanFile]
    apparmor: list[PlanAppArmor]
    slices: list[PlanSlice]
    units: list[PlanUnit]
    packages: list[str]
    hooks: list[PlanHook]
    module_params: list[PlanModuleParam]
    landlock: NotRequired[list[PlanLandlock]]
