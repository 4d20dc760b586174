"""What every policy kind gives the registry, and the plan under construction it adds to."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from ..checks.base import Check
    from ..plan_schema import Feature, NodePlan
    from ..spec.host import HostSpec
    from ..spec.node import NodePolicies

S = TypeVar("S")


@dataclass
class PlanParts:
    """A node's plan while the kinds add to it (`ringzero.plan.policies_plan` finishes it).

    `plan` is the document the node module gets; the rest is what the units section is made of
    once every kind added its files: units a kind installs (`own`), units it only confines.
    """

    plan: NodePlan
    owned: dict[str, Feature] = field(default_factory=dict)  # unit -> feature that installs it
    adopted: set[str] = field(default_factory=set)  # units declared with adopt: true
    confined: set[str] = field(default_factory=set)  # units a kind changes but does not install
    programs: dict[str, list[str]] = field(default_factory=dict)  # unit -> other files it runs

    def add(self, feature: Feature, rendered: dict[str, str], adopt: bool = False, mode: str = "0644") -> None:
        """Plan `rendered` files (path -> content) for `feature`, written with `mode` ("0755" for a
        program). adopt: the node module may take over a file it did not create (saving the original)."""
        self.plan["files"].update({p: {"content": t, "mode": mode, "feature": feature, "adopt": adopt}
                                   for p, t in rendered.items()})

    def own(self, unit: str, feature: Feature, *, adopt: bool = False, programs: Iterable[str] = ()) -> None:
        """`unit` is installed by `feature`: enabled, started, restarted when its files change."""
        self.owned[unit] = feature
        if adopt:
            self.adopted.add(unit)
        self.programs[unit] = list(programs)


@dataclass(frozen=True)
class Kind(Generic[S]):
    """One policy kind as the registry (`ringzero.kinds.registry`) sees it.

    `declared` picks the kind's specs from a node's policies (with the settings of its host),
    `render` gives the files one spec writes, `plan` adds the spec to the node's plan, `checks`
    gives what proves it on the node. `owner` names a spec in error messages.
    """

    name: str  # the folder: components/kinds/<name>
    feature: str  # the plan's feature, and its playbook (playbooks/<feature>.yml)
    declared: Callable[[NodePolicies, HostSpec], Sequence[S]]
    render: Callable[[S], dict[str, str]]
    plan: Callable[[PlanParts, S], None]
    checks: Callable[[str, S], list[Check]]
    owner: Callable[[S], str]
    # Files a spec makes the node write besides those it renders (an agent's output): (path, who).
    also_writes: Callable[[S], Sequence[tuple[str, str]]] = lambda _spec: ()
    # Services a spec starts through a launcher: service -> the argv words put before the
    # service's own command (`ringzero.kinds.service.kind.launched` chains them, kinds earlier
    # in the registry outermost). Only a service ringzero installs (a ServiceSpec) can be wrapped.
    wraps: Callable[[S], Mapping[str, Sequence[str]]] = lambda _spec: {}
