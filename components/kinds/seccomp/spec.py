"""SeccompProfileSpec: a syscall filter, rendered as OCI JSON and as systemd drop-ins."""

from __future__ import annotations

import errno as _errno
import re
from dataclasses import dataclass

from ...spec import _libseccomp
from ...spec._check import Ctx
from ..service.spec import SERVICE_ALLOWED, SERVICE_RE

ACTIONS = (
    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL", "SCMP_ACT_LOG", "SCMP_ACT_TRAP",
)
ARCHES = tuple(_libseccomp.ARCH_TOKENS)
ERRNO_NAMES = tuple(sorted(n for n in dir(_errno) if n.startswith("E") and n.isupper()))
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class SyscallRule:
    """Syscalls and what happens when they are called. Example: ``SyscallRule(("mkdir",), "SCMP_ACT_ERRNO")``."""

    names: tuple[str, ...]
    action: str
    errno: str | None = None


@dataclass(frozen=True)
class SeccompProfileSpec:
    """A seccomp profile; `services` get it as a systemd SystemCallFilter= drop-in.

    Example::

        SeccompProfileSpec(name="no-mkdir", default_action="SCMP_ACT_ALLOW",
                           rules=(SyscallRule(("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", "EPERM"),),
                           services=("demo.service",))
    """

    name: str
    default_action: str = "SCMP_ACT_ERRNO"
    default_errno: str = "EPERM"
    architecture: str = "x86_64"
    rules: tuple[SyscallRule, ...] = ()
    services: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ctx = Ctx("SeccompProfile", str(self.name))
        ctx.pattern("name", self.name, _NAME_RE, "1-128 characters of letters, digits and . _ -")
        ctx.choice("default_action", self.default_action, ACTIONS)
        ctx.choice("default_errno", self.default_errno, ERRNO_NAMES)
        ctx.choice("architecture", self.architecture, ARCHES)
        if not self.rules:
            raise ctx.fail("rules", self.rules, "at least one SyscallRule")
        for i, rule in enumerate(self.rules):
            ctx.choice(f"rules[{i}].action", rule.action, ACTIONS)
            if rule.errno is not None:
                ctx.choice(f"rules[{i}].errno", rule.errno, ERRNO_NAMES)
            if not rule.names:
                raise ctx.fail(f"rules[{i}].names", rule.names, "at least one syscall name")
            for j, name in enumerate(rule.names):
                field = f"rules[{i}].names[{j}]"
                if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,64}", name):
                    raise ctx.fail(field, name, "a syscall name of a-z, 0-9 and '_'")
                if _libseccomp.syscall_number(self.architecture, name) is None:
                    raise ctx.fail(field, name, f"a syscall libseccomp knows on {self.architecture}")
        for i, svc in enumerate(self.services):
            ctx.pattern(f"services[{i}]", svc, SERVICE_RE, SERVICE_ALLOWED)
        if self.services and self.systemd_filter is None:
            raise ctx.fail(
                "services", self.services,
                "services only for a profile systemd can express: default SCMP_ACT_ALLOW with "
                "SCMP_ACT_ERRNO rules (a deny list) or default SCMP_ACT_ERRNO with "
                "SCMP_ACT_ALLOW rules (an allow list), one errno",
            )

    @property
    def oci_arch(self) -> str:
        return _libseccomp.OCI_ARCH[self.architecture]

    @property
    def syscalls(self) -> tuple[str, ...]:
        return tuple(n for r in self.rules for n in r.names)

    @property
    def systemd_filter(self) -> tuple[str, str] | None:
        """(SystemCallFilter= value, SystemCallErrorNumber=) when systemd can express this profile."""
        actions = {r.action for r in self.rules}
        errnos = {r.errno or self.default_errno for r in self.rules}
        names = " ".join(self.syscalls)
        if self.default_action == "SCMP_ACT_ALLOW" and actions == {"SCMP_ACT_ERRNO"} and len(errnos) == 1:
            return "~" + names, errnos.pop()
        if self.default_action == "SCMP_ACT_ERRNO" and actions == {"SCMP_ACT_ALLOW"}:
            return names, self.default_errno
        return None
