"""FilesystemViewSpec: a service's view of the filesystem: a read-only system, writable and
hidden paths, bind mounts and an overlayfs composition."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...spec._check import Ctx
from ...spec.errors import SpecError
from ..service.spec import SERVICE_ALLOWED, SERVICE_RE

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
BIND_ALLOWED = ("'SOURCE:DESTINATION' (or one path for both), absolute paths of letters, digits and "
                ". _ / @ + = - (no ':' inside a path, no '..', no spaces)")


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


@dataclass(frozen=True)
class OverlaySpec:
    """An overlayfs the workload sees at `target`: `lower` read-only (the first on top), writes
    going to an upper directory ringzero creates for it (`expect.overlay_dirs`).

    Example::

        OverlaySpec(target="/srv/app", lower=("/opt/app-release", "/opt/app-base"))
    """

    target: str
    lower: tuple[str, ...]


@dataclass(frozen=True)
class FilesystemViewSpec:
    """What `services` see of the filesystem.

    Example::

        FilesystemViewSpec(name="web-view", services=("web.service",), read_only_system=True,
                           writable=("/var/lib/web",), hidden=("/home", "/root"),
                           bind_read_only=("/etc/web:/etc/web",),
                           overlay=OverlaySpec("/srv/app", ("/opt/app",)))
    """

    name: str
    services: tuple[str, ...] = ()
    read_only_system: bool = False
    writable: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    bind_read_only: tuple[str, ...] = ()
    bind_read_write: tuple[str, ...] = ()
    overlay: OverlaySpec | None = None

    def __post_init__(self) -> None:
        ctx = Ctx("FilesystemView", str(self.name))
        ctx.pattern("name", self.name, _NAME_RE, "1-64 characters of letters, digits, '_' and '-'")
        if not isinstance(self.services, tuple):  # () in a ConfinedServiceSpec: filled in with its service
            raise ctx.fail("services", self.services, "a tuple of service unit names")
        for i, svc in enumerate(self.services):
            ctx.pattern(f"services[{i}]", svc, SERVICE_RE, SERVICE_ALLOWED)
        if not isinstance(self.read_only_system, bool):
            raise ctx.fail("read_only_system", self.read_only_system, "true or false")
        claimed: dict[str, str] = {}  # path -> the field that declares something at it

        def claim(field: str, path: str) -> None:
            if path in claimed:
                raise ctx.fail(field, path, f"a path declared once in a view (it is already in {claimed[path]})")
            claimed[path] = field

        for i, path in enumerate(self.writable):
            claim(f"writable[{i}]", ctx.canonical_path(f"writable[{i}]", path))
        for i, path in enumerate(self.hidden):
            ctx.canonical_path(f"hidden[{i}]", path)
            if path == "/":
                raise ctx.fail(f"hidden[{i}]", path, "a path other than '/' (the workload needs a root)")
            claim(f"hidden[{i}]", path)
        for field, binds in (("bind_read_only", self.bind_read_only), ("bind_read_write", self.bind_read_write)):
            for i, entry in enumerate(binds):
                _src, dst = self._bind(ctx, f"{field}[{i}]", entry)
                claim(f"{field}[{i}]", dst)
        if self.overlay is not None:
            o = self.overlay
            if not isinstance(o, OverlaySpec):
                raise ctx.fail("overlay", o, "an OverlaySpec (target, lower) or null")
            target = ctx.canonical_path("overlay.target", o.target)
            if target == "/":
                raise ctx.fail("overlay.target", target, "a path other than '/'")
            claim("overlay.target", target)
            if not isinstance(o.lower, tuple) or not o.lower:
                raise ctx.fail("overlay.lower", o.lower, "at least one read-only lower directory")
            for i, low in enumerate(o.lower):
                self._no_colon(ctx, f"overlay.lower[{i}]", ctx.canonical_path(f"overlay.lower[{i}]", low))
                if _under(low, target) or _under(target, low):
                    raise ctx.fail(f"overlay.lower[{i}]", low, f"a directory outside the overlay's target {target} "
                                   "(and not containing it)")
            if len(set(o.lower)) != len(o.lower):
                raise ctx.fail("overlay.lower", o.lower, "each lower directory once")
        # A path under a hidden one cannot be writable, bound or an overlay: it is not there.
        for path, field in claimed.items():
            for hidden in self.hidden:
                if path != hidden and _under(path, hidden):
                    raise ctx.fail(field, path, f"a path outside the hidden {hidden} (a path both hidden and "
                                   f"{field.split('[')[0].split('.')[0]} is a contradiction)")
        if not (self.read_only_system or self.writable or self.hidden or self.bind_read_only
                or self.bind_read_write or self.overlay):
            raise ctx.fail("read_only_system", self.read_only_system,
                           "a view that declares something: read_only_system, writable, hidden, binds or overlay")

    @staticmethod
    def _no_colon(ctx: Ctx, field: str, path: str) -> None:
        if ":" in path:
            raise ctx.fail(field, path, "a path without ':' (it separates paths in the directive)")

    def _bind(self, ctx: Ctx, field: str, entry: object) -> tuple[str, str]:
        if not isinstance(entry, str):
            raise ctx.fail(field, entry, BIND_ALLOWED)
        src, _, dst = entry.partition(":")
        dst = dst or src
        try:
            ctx.canonical_path(field, src)
            ctx.canonical_path(field, dst)
        except SpecError:
            raise ctx.fail(field, entry, BIND_ALLOWED) from None
        if ":" in dst or dst == "/":
            raise ctx.fail(field, entry, BIND_ALLOWED + ", a destination other than '/'")
        return src, dst

    @property
    def binds(self) -> tuple[tuple[str, str, bool], ...]:
        """(source, destination, read_only) of every bind mount, read-only ones first."""
        out = []
        for entries, ro in ((self.bind_read_only, True), (self.bind_read_write, False)):
            for e in entries:
                src, _, dst = e.partition(":")
                out.append((src, dst or src, ro))
        return tuple(out)
