"""THE table of Landlock access rights and the ABI that brought each (include/uapi/linux/landlock.h),
and what a declared ruleset is on a node of a given ABI: the rights it enforces, those it drops.

ABI 1 (Linux 5.13) filesystem rights; 2 (5.19) refer; 3 (6.2) truncate; 4 (6.7) TCP bind and
connect; 5 (6.10) ioctl on devices; 6 (6.12) scopes (abstract unix sockets, signals); 7 (6.15)
audit-log flags, no new right. Example::

    enforced(LandlockSpec("web", bind_tcp=(8080,)), 2).dropped   # ('truncate', 'ioctl_dev', 'bind_tcp')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .spec import LandlockSpec

LAUNCHER = "/usr/local/libexec/ringzero/landlock-exec"
RULESET_DIR = "/etc/ringzero/landlock"
MARKER = "RINGZERO_LANDLOCK"  # the variable the launcher sets in the command it runs
LATEST_ABI = 7


@dataclass(frozen=True)
class Right:
    """One access right: where it goes (fs, net or scope), its bit, the ABI that brought it, and
    whether a rule on a regular file may grant it (a directory takes every fs right)."""

    name: str
    scope: Literal["fs", "net", "scope"]
    bit: int
    abi: int
    file: bool = False


RIGHTS: tuple[Right, ...] = (
    Right("execute", "fs", 0, 1, True), Right("write_file", "fs", 1, 1, True), Right("read_file", "fs", 2, 1, True),
    Right("read_dir", "fs", 3, 1), Right("remove_dir", "fs", 4, 1), Right("remove_file", "fs", 5, 1),
    Right("make_char", "fs", 6, 1), Right("make_dir", "fs", 7, 1), Right("make_reg", "fs", 8, 1),
    Right("make_sock", "fs", 9, 1), Right("make_fifo", "fs", 10, 1), Right("make_block", "fs", 11, 1),
    Right("make_sym", "fs", 12, 1),
    Right("refer", "fs", 13, 2),
    Right("truncate", "fs", 14, 3, True),
    Right("bind_tcp", "net", 0, 4), Right("connect_tcp", "net", 1, 4),
    Right("ioctl_dev", "fs", 15, 5, True),
    Right("abstract_unix_socket", "scope", 0, 6), Right("signal", "scope", 1, 6),
)
BY_NAME = {r.name: r for r in RIGHTS}
FS_RIGHTS = tuple(r.name for r in RIGHTS if r.scope == "fs")
_READ = ("read_file", "read_dir")
# What each simple field of LandlockSpec grants on its paths (only rights the ruleset handles count).
GRANTS: dict[str, tuple[str, ...]] = {
    "read_only": _READ,
    "execute": ("execute", *_READ),
    "read_write": tuple(r for r in FS_RIGHTS if r != "execute"),
}


def handled(spec: LandlockSpec) -> tuple[Right, ...]:
    """The rights the ruleset restricts: its filesystem rights (all of the table's unless
    `handled_fs` names fewer), TCP bind/connect when ports are declared for them (even none)."""
    fs = set(FS_RIGHTS if spec.handled_fs is None else spec.handled_fs)
    net = {n for n, ports in (("bind_tcp", spec.bind_tcp), ("connect_tcp", spec.connect_tcp)) if ports is not None}
    return tuple(r for r in RIGHTS if r.name in fs | net)


@dataclass(frozen=True)
class Enforced:
    abi: int
    enforced: tuple[str, ...]
    dropped: tuple[str, ...]

    def describe(self, spec: LandlockSpec) -> str:
        """'ABI 2 drops truncate (ABI 3), bind_tcp (ABI 4)', or that it drops nothing."""
        if not self.dropped:
            return f"Landlock ABI {self.abi} enforces every right of {spec.name!r}"
        return (f"Landlock ABI {self.abi} cannot enforce " + ", ".join(f"{n} (ABI {BY_NAME[n].abi})" for n in
                                                                        self.dropped) + f" of {spec.name!r}")


def enforced(spec: LandlockSpec, abi: int) -> Enforced:
    """What a node of Landlock ABI `abi` enforces of the spec's ruleset, and what it drops."""
    rights = handled(spec)
    return Enforced(abi, tuple(r.name for r in rights if r.abi <= abi), tuple(r.name for r in rights if r.abi > abi))


def needs(spec: LandlockSpec) -> dict[str, int]:
    """Right -> the ABI it needs, for every right the ruleset handles (the node module's preflight)."""
    return {r.name: r.abi for r in handled(spec)}


def ruleset_path(spec: LandlockSpec) -> str:
    return f"{RULESET_DIR}/{spec.name}.json"


def ruleset(spec: LandlockSpec) -> dict[str, Any]:
    """The document the launcher applies: every handled right with its bit and ABI (so the
    launcher needs no table), the paths with what each grants, the ports."""
    rights = handled(spec)
    names = {r.name for r in rights}
    paths: dict[str, list[str]] = {}
    for field, grant in GRANTS.items():
        for path in getattr(spec, field):
            have = paths.setdefault(path, [])
            have += [g for g in grant if g in names and g not in have]
    ports: dict[int, list[str]] = {}
    for right, declared in (("bind_tcp", spec.bind_tcp), ("connect_tcp", spec.connect_tcp)):
        for port in declared or ():
            ports.setdefault(port, []).append(right)
    order = {r.name: i for i, r in enumerate(RIGHTS)}
    return {
        "format": 1, "name": spec.name, "mode": spec.mode,
        "rights": {r.name: {"scope": r.scope, "bit": r.bit, "abi": r.abi, "file": r.file} for r in rights},
        "paths": [{"path": p, "access": sorted(a, key=order.__getitem__)} for p, a in sorted(paths.items()) if a],
        "ports": [{"port": p, "access": a} for p, a in sorted(ports.items())],
    }


def beneath(path: str, parent: str) -> bool:
    return parent == "/" or path == parent or path.startswith(parent + "/")


# Where the effect probe tries a write the ruleset must deny: the first not beneath a path the
# ruleset lets it write (root bypasses permissions, so only Landlock can refuse it there).
DENIED_CANDIDATES = ("/var/tmp", "/tmp", "/root", "/var", "/")
PROBE_PORTS = (47613, 47614, 47615, 47616)  # a bind the ruleset denies: the first not declared


def write_targets(spec: LandlockSpec) -> tuple[str | None, str | None]:
    """(a directory where a write must be denied, one where it must succeed), or None each."""
    writable = [p for p in spec.read_write] if "write_file" in {r.name for r in handled(spec)} else []
    denied = next((c for c in DENIED_CANDIDATES if not any(beneath(c, w) for w in writable)), None)
    return denied, (writable[0] if writable else None)


def bind_target(spec: LandlockSpec) -> int | None:
    if spec.bind_tcp is None:
        return None
    return next(p for p in PROBE_PORTS if p not in spec.bind_tcp)
