"""ConfinedServiceSpec: refused input names resource, field, value and what is allowed; a confined
service unfolds into its kinds' specs and plans as they would on their own."""

from __future__ import annotations

import pytest

from ringzero.plan import policies_plan
from ringzero.spec import (
    ConfinedServiceSpec,
    HostSpec,
    NodePolicies,
    SeccompProfileSpec,
    ServiceSpec,
    SliceSpec,
    SocketFilterSpec,
    SpecError,
    SyscallRule,
)

SVC = ServiceSpec("web.service", "/usr/bin/sleep infinity")
FILTER = SeccompProfileSpec("no-mkdir", default_action="SCMP_ACT_ALLOW",
                            rules=(SyscallRule(("mkdir",), "SCMP_ACT_ERRNO", "EPERM"),))


def test_a_part_confining_another_service_is_refused() -> None:
    other = SeccompProfileSpec("no-mkdir", default_action="SCMP_ACT_ALLOW", services=("db.service",),
                               rules=FILTER.rules)
    with pytest.raises(SpecError) as e:
        ConfinedServiceSpec(service=SVC, seccomp=other)
    msg = str(e.value)
    assert "ConfinedService 'web.service'" in msg and "seccomp.services=('db.service',)" in msg
    assert "empty" in msg and "('web.service',)" in msg


def test_the_service_must_be_a_service_spec() -> None:
    with pytest.raises(SpecError, match=r"ConfinedService 'web.service': service='web.service' .*a ServiceSpec"):
        ConfinedServiceSpec(service="web.service")  # type: ignore[arg-type]


def test_it_unfolds_into_the_kinds_and_plans_as_they_would_on_their_own() -> None:
    confined = NodePolicies("vm1", confined=(ConfinedServiceSpec(
        service=SVC, slice=SliceSpec("web.slice", memory_max="64M"), seccomp=FILTER,
        sockets=SocketFilterSpec("web-net", ip_deny=("any",))),))
    alone = NodePolicies("vm1", services=(SVC,), slices=(SliceSpec("web.slice", memory_max="64M",
                                                                    services=(SVC.name,)),),
                         seccomp=(SeccompProfileSpec("no-mkdir", default_action="SCMP_ACT_ALLOW",
                                                     rules=FILTER.rules, services=(SVC.name,)),),
                         sockfilter=(SocketFilterSpec("web-net", services=(SVC.name,), ip_deny=("any",)),))
    assert confined == alone and confined.confined == ()
    assert policies_plan(confined, HostSpec("vm1")) == policies_plan(alone, HostSpec("vm1"))


def test_a_part_named_like_a_spec_of_the_node_is_refused() -> None:
    with pytest.raises(SpecError, match=r"slices='web.slice'.*each slices name once per node"):
        NodePolicies("vm1", slices=(SliceSpec("web.slice"),),
                     confined=(ConfinedServiceSpec(service=SVC, slice=SliceSpec("web.slice")),))
