"""The policy kinds, one folder each: everything about a kind is found under its name.

    kinds/<kind>/spec.py     the spec dataclass and its validation (re-exported by ringzero.spec)
    kinds/<kind>/render.py   the files it renders (templates only lay them out)
    kinds/<kind>/expect.py   the one table its directives, plan expectations and checks come from
    kinds/<kind>/checks.py   its compliance checks, built from that table
    kinds/<kind>/kind.py     its registry entry: where a node declares it, its part of the plan

`registry()` lists them in plan order; `ringzero.plan` and `ringzero.checks` loop over it.
It is imported lazily: the specs are imported by `ringzero.spec`, long before the renderers
and checks (which import `ringzero.spec` themselves) can be.
"""

from __future__ import annotations

import functools
from typing import Any

from .base import Kind, PlanParts

__all__ = ["Kind", "PlanParts", "registry"]


@functools.cache
def registry() -> tuple[Kind[Any], ...]:
    """Every kind, in the order its files, units and checks appear in a node's plan and report.

    Example::

        [k.feature for k in registry()]
        # ['services', 'slices', 'apparmor', 'seccomp', 'ebpf', 'host_prep', 'namespaces', 'fsview', 'landlock',
        #  'firewall', 'sockfilter']
    """
    from .apparmor.kind import KIND as apparmor
    from .ebpf.kind import KIND as ebpf
    from .firewall.kind import KIND as firewall
    from .fsview.kind import KIND as fsview
    from .hostprep.kind import KIND as hostprep
    from .landlock.kind import KIND as landlock
    from .namespaces.kind import KIND as namespaces
    from .seccomp.kind import KIND as seccomp
    from .service.kind import KIND as service
    from .slice.kind import KIND as slice_
    from .sockfilter.kind import KIND as sockfilter

    return (service, slice_, apparmor, seccomp, ebpf, hostprep, namespaces, fsview, landlock, firewall, sockfilter)
