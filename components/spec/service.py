"""ServiceSpec: a workload the node runs as a systemd service, so policies can confine it.

Slices place services (`SliceSpec.services`), seccomp profiles filter them
(`SeccompProfileSpec.services`); a ServiceSpec declares such a service when ringzero should
also install it. Services that already exist on the node need no ServiceSpec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._check import Ctx
from .cgroup import SERVICE_ALLOWED, SERVICE_RE

RESTART = ("always", "on-failure", "no")
_ARG_RE = re.compile(r"^[A-Za-z0-9._/@+=:,-]+$")
ARG_ALLOWED = (
    "words of letters, digits and . _ / @ + = : , - separated by single spaces, the first an "
    "absolute path (no quotes, '$', '%', ';', '#', backslashes or newlines)"
)
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class ServiceSpec:
    """A long-running service unit ringzero installs, enables and starts.

    Example::

        ServiceSpec(name="web.service", exec_start="/usr/bin/python3 -m http.server 8080",
                    description="Static web server", user="www-data")
    """

    name: str
    exec_start: str
    description: str = ""
    user: str = "root"
    restart: str = "always"

    def __post_init__(self) -> None:
        ctx = Ctx("Service", str(self.name))
        ctx.pattern("name", self.name, SERVICE_RE, SERVICE_ALLOWED)
        if self.name.startswith("ringzero-ebpf-"):
            raise ctx.fail("name", self.name, "a name outside 'ringzero-ebpf-*' (eBPF agents' units)")
        if not isinstance(self.exec_start, str):
            raise ctx.fail("exec_start", self.exec_start, ARG_ALLOWED)
        words = self.exec_start.split(" ")
        if not words[0].startswith("/") or not all(_ARG_RE.fullmatch(w) for w in words):
            raise ctx.fail("exec_start", self.exec_start, ARG_ALLOWED)
        ctx.abs_path("exec_start", words[0])
        ctx.text("description", self.description)
        ctx.pattern("user", self.user, _USER_RE, "a POSIX user name: a-z, 0-9, '_' and '-', at most 32")
        ctx.choice("restart", self.restart, RESTART)
