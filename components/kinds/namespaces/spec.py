"""NamespacesSpec: the Linux namespaces a service's workload gets privately, and those it may create."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...spec._check import Ctx
from ..service.spec import SERVICE_ALLOWED, SERVICE_RE

if TYPE_CHECKING:
    from ...spec.node import NodePolicies

# The namespace types systemd 252's RestrictNamespaces= knows, as /proc/<pid>/ns/ and lsns name them.
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")
# Made private by the launcher (`unshare`), not by a systemd 252 directive; the launcher creates
# them under the unit's RestrictNamespaces= filter, so they must be allowed there.
LAUNCHED = ("cgroup", "pid")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class NamespacesSpec:
    """The namespaces `services` run in privately; every other type stays the host's.

    `may_create`: the namespace types the workload may create itself (systemd's
    RestrictNamespaces= allow list; `()` allows none); None leaves it unrestricted.

    Example::

        NamespacesSpec(name="web-ns", services=("web.service",), private=("net", "ipc", "uts"),
                       may_create=())
    """

    name: str
    services: tuple[str, ...] = ()
    private: tuple[str, ...] = ()
    may_create: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        ctx = Ctx("Namespaces", str(self.name))
        ctx.pattern("name", self.name, _NAME_RE, "1-64 characters of letters, digits, '_' and '-'")
        if not isinstance(self.services, tuple):  # () in a ConfinedServiceSpec: filled in with its service
            raise ctx.fail("services", self.services, "a tuple of service unit names")
        for i, svc in enumerate(self.services):
            ctx.pattern(f"services[{i}]", svc, SERVICE_RE, SERVICE_ALLOWED)
        for field, values in (("private", self.private), ("may_create", self.may_create or ())):
            seen: set[str] = set()
            for i, ns in enumerate(values):
                ctx.choice(f"{field}[{i}]", ns, NAMESPACES)
                if ns in seen:
                    raise ctx.fail(f"{field}[{i}]", ns, f"each namespace type once in {field}")
                seen.add(ns)
        if "ipc" in self.private and "mnt" not in self.private:
            raise ctx.fail("private", self.private, "a list with 'mnt' when it has 'ipc': systemd 252 gives a "
                           "PrivateIPC= unit a mount namespace of its own (for its /dev/mqueue), whatever "
                           "PrivateMounts= says")
        if self.may_create is not None:
            missing = [ns for ns in self.launched if ns not in self.may_create]
            if missing:
                raise ctx.fail(
                    "may_create", self.may_create,
                    f"a list that includes {', '.join(repr(m) for m in missing)}: systemd 252 has no directive "
                    "for a private pid or cgroup namespace, so the launcher `unshare` creates it inside the "
                    "unit, under its RestrictNamespaces= filter (the workload may then create them too)")

    @property
    def launched(self) -> tuple[str, ...]:
        """The private types the launcher creates (plus `mnt` when it mounts /proc for a pid namespace)."""
        types = [ns for ns in LAUNCHED if ns in self.private]
        if "pid" in self.private and "mnt" in self.private:
            types.append("mnt")  # --mount-proc: a fresh /proc in a mount namespace of its own
        return tuple(types)


def check_node(policies: NodePolicies) -> None:
    """What one spec cannot see: a service's namespaces declared once; its launcher able to run
    (it creates pid and cgroup namespaces as the service's user: root); a filesystem view, which
    needs a mount namespace, only where mnt is declared private."""
    declared: dict[str, str] = {}
    users = {s.name: s.user for s in policies.services}
    viewed = {svc: v.name for v in policies.fsviews for svc in v.services}
    for spec in policies.namespaces:
        ctx = Ctx("Namespaces", spec.name)
        for i, svc in enumerate(spec.services):
            if svc in declared:
                raise ctx.fail(f"services[{i}]", svc,
                               f"a service in one Namespaces only (already in {declared[svc]!r})")
            declared[svc] = spec.name
            if spec.launched and users.get(svc, "root") != "root":
                raise ctx.fail(f"services[{i}]", svc, f"a service running as root (it runs as {users[svc]!r}): the "
                               "launcher `unshare` needs CAP_SYS_ADMIN to create its pid/cgroup namespaces")
            if svc in viewed and "mnt" not in spec.private:
                raise ctx.fail("private", spec.private, f"a list with 'mnt': {svc} has FilesystemView "
                               f"{viewed[svc]!r}, which gives it a mount namespace of its own")
