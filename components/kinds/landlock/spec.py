"""LandlockSpec: filesystem and TCP rights a service runs under, enforced by Landlock.

ringzero starts each service of the spec through its launcher (`Kind.wraps`), which applies the
ruleset and then execs the service's command: systemd 252 has no Landlock directive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...spec._check import Ctx
from ..service.spec import SERVICE_ALLOWED, SERVICE_RE

MODES = ("strict", "best_effort")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PATH_FIELDS = ("read_only", "read_write", "execute")
PORT_FIELDS = ("bind_tcp", "connect_tcp")


def _fs_rights() -> tuple[str, ...]:
    from .expect import FS_RIGHTS  # expect imports this module for the type

    return FS_RIGHTS


@dataclass(frozen=True)
class LandlockSpec:
    """A Landlock ruleset; `services` (ServiceSpecs of the node) run under it.

    Everything the ruleset handles is denied but what it grants: read_only paths may be read,
    execute paths read and executed, read_write paths read and changed (not executed). TCP is
    restricted only when `bind_tcp`/`connect_tcp` are given (`()` allows no port at all).
    `mode="strict"` refuses a node whose Landlock ABI cannot enforce every handled right;
    `"best_effort"` applies what it can and reports what it dropped. `handled_fs` narrows the
    filesystem rights handled (default: all of them, truncate from ABI 3 and ioctl_dev from
    ABI 5 included). Example::

        LandlockSpec(name="web", services=("web.service",), mode="best_effort",
                     execute=("/usr",), read_only=("/etc",), read_write=("/srv/web",), bind_tcp=(8080,))
    """

    name: str
    services: tuple[str, ...] = ()
    mode: str = "strict"
    read_only: tuple[str, ...] = ()
    read_write: tuple[str, ...] = ()
    execute: tuple[str, ...] = ()
    bind_tcp: tuple[int, ...] | None = None
    connect_tcp: tuple[int, ...] | None = None
    handled_fs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        ctx = Ctx("Landlock", str(self.name))
        ctx.pattern("name", self.name, _NAME_RE, "1-128 characters of letters, digits and . _ -")
        ctx.choice("mode", self.mode, MODES)
        for field in PATH_FIELDS:
            paths = getattr(self, field)
            if not isinstance(paths, tuple):
                raise ctx.fail(field, paths, "a list of absolute paths")
            for i, path in enumerate(paths):
                ctx.canonical_path(f"{field}[{i}]", path)
                if path != "/" and path.endswith("/"):
                    raise ctx.fail(f"{field}[{i}]", path, "an absolute path without a trailing '/'")
                if path in paths[:i]:
                    raise ctx.fail(f"{field}[{i}]", path, f"each path once in {field}")
        for field in PORT_FIELDS:
            ports = getattr(self, field)
            if ports is None:
                continue
            if not isinstance(ports, tuple):
                raise ctx.fail(field, ports, "a list of TCP ports (1-65535), or none to leave TCP unrestricted")
            for i, port in enumerate(ports):
                ctx.int_range(f"{field}[{i}]", port, 1, 65535)
                if port in ports[:i]:
                    raise ctx.fail(f"{field}[{i}]", port, f"each port once in {field}")
        if self.handled_fs is not None:
            known = _fs_rights()
            if not isinstance(self.handled_fs, tuple) or not self.handled_fs:
                raise ctx.fail("handled_fs", self.handled_fs, "at least one Landlock filesystem right, or none "
                               "for all of them")
            for i, right in enumerate(self.handled_fs):
                if right in ("bind_tcp", "connect_tcp"):
                    raise ctx.fail(f"handled_fs[{i}]", right, "a filesystem right (TCP is restricted by declaring "
                                   "bind_tcp / connect_tcp ports)")
                ctx.choice(f"handled_fs[{i}]", right, known)
        if not any(getattr(self, f) for f in PATH_FIELDS) and self.bind_tcp is None and self.connect_tcp is None:
            raise ctx.fail("read_only", (), "at least one path (read_only, read_write or execute) or TCP port "
                           "list: an empty ruleset denies the service its own command")
        if not isinstance(self.services, tuple):
            raise ctx.fail("services", self.services, "a list of service names")
        for i, svc in enumerate(self.services):
            ctx.pattern(f"services[{i}]", svc, SERVICE_RE, SERVICE_ALLOWED)
