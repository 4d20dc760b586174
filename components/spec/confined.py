"""ConfinedServiceSpec: one workload and everything that confines it, declared in one place.

    Isolate(Process, Namespace) -> IsolatedProcess: a service plus what it may see and do. Each
    part is the spec of its own kind (and can be declared on its own in NodePolicies); here its
    `services` are left empty and filled in with this service. NodePolicies unfolds a confined
    service into its parts, so plans, checks and reports are those of the kinds. Example::

        ConfinedServiceSpec(
            service=ServiceSpec("web.service", "/usr/bin/python3 -m http.server 8080", user="www-data"),
            slice=SliceSpec("web.slice", memory_max="256M"),
            seccomp=SeccompProfileSpec("web-seccomp", default_action="allow",
                                       syscalls=(SyscallRule(("mkdir",), "errno", errno="EPERM"),)),
            landlock=LandlockSpec("web", mode="best_effort", execute=("/usr",), read_only=("/etc",)),
        )
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..kinds.apparmor.spec import AppArmorProfileSpec
from ..kinds.fsview.spec import FilesystemViewSpec
from ..kinds.landlock.spec import LandlockSpec
from ..kinds.namespaces.spec import NamespacesSpec
from ..kinds.seccomp.spec import SeccompProfileSpec
from ..kinds.service.spec import ServiceSpec
from ..kinds.slice.spec import SliceSpec
from ..kinds.sockfilter.spec import SocketFilterSpec
from ._check import Ctx

# ConfinedServiceSpec field -> the NodePolicies field its part joins.
PARTS: dict[str, str] = {
    "slice": "slices", "apparmor": "apparmor", "seccomp": "seccomp", "namespaces": "namespaces",
    "view": "fsviews", "landlock": "landlock", "sockets": "sockfilter",
}


@dataclass(frozen=True)
class ConfinedServiceSpec:
    """A service ringzero installs and the policies that confine it (each optional)."""

    service: ServiceSpec
    slice: SliceSpec | None = None  # its own slice, the service placed in it
    apparmor: AppArmorProfileSpec | None = None  # run under this profile (AppArmorProfile=)
    seccomp: SeccompProfileSpec | None = None  # its system call filter
    namespaces: NamespacesSpec | None = None  # the namespaces it gets privately
    view: FilesystemViewSpec | None = None  # what it sees of the filesystem
    landlock: LandlockSpec | None = None  # started through ringzero's Landlock launcher
    sockets: SocketFilterSpec | None = None  # systemd's cgroup eBPF address and bind filters

    def __post_init__(self) -> None:
        name = getattr(self.service, "name", self.service)
        ctx = Ctx("ConfinedService", str(name))
        if not isinstance(self.service, ServiceSpec):
            raise ctx.fail("service", self.service, "a ServiceSpec (the workload ringzero installs)")
        for field in PARTS:
            part = getattr(self, field)
            if part is None:
                continue
            services = getattr(part, "services", ())
            if services not in ((), (name,)):
                raise ctx.fail(f"{field}.services", services,
                               f"empty (a confined service's parts confine it: {name!r}) or ({name!r},)")

    def parts(self) -> dict[str, Any]:
        """NodePolicies field -> the part with this service filled in."""
        out: dict[str, Any] = {"services": self.service}
        for field, policies_field in PARTS.items():
            part = getattr(self, field)
            if part is not None:
                out[policies_field] = dataclasses.replace(part, services=(self.service.name,))
        return out
