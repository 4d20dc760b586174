"""THE table of the filesystem view kind: each declared part of a view ▶ its systemd 252
directive ▶ what `findmnt` shows in the workload's mount namespace (the mount the path is on,
its options, for a bind the same file as its source, for the overlay its lower and upper).

render lays out `directives()` and the overlay's mount unit; checks.py is one check per
`Expectation`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from .spec import FilesystemViewSpec

RUNTIME_PREFIX = "ringzero_fsview_"  # /run/<prefix><name>: the overlay's upper, work and merged dirs
# What systemd 252 mounts over a hidden path (InaccessiblePaths=): an empty mode-0000 node in
# /run/systemd/inaccessible/, seen as the mount's root inside tmpfs /run.
INACCESSIBLE_ROOTS = ("/systemd/inaccessible/dir", "/systemd/inaccessible/reg", "/systemd/inaccessible/chr",
                      "/systemd/inaccessible/blk", "/systemd/inaccessible/fifo", "/systemd/inaccessible/sock")
READ_ONLY_PROBES = ("/usr", "/etc", "/boot")  # ProtectSystem=strict: these (and all but /dev /proc /sys) ro


@dataclass(frozen=True)
class OverlayDirs:
    """The overlay's directories, all ringzero's: created by systemd (RuntimeDirectory= of the
    mount unit) when the overlay is mounted, removed when it is unmounted."""

    runtime: str  # RuntimeDirectory= name, under /run
    root: str
    upper: str
    work: str
    merged: str  # where the mount unit mounts it; bound into the workload's view at the target


def overlay_dirs(spec: FilesystemViewSpec) -> OverlayDirs:
    runtime = f"{RUNTIME_PREFIX}{spec.name}"
    root = f"/run/{runtime}"
    return OverlayDirs(runtime, root, f"{root}/upper", f"{root}/work", f"{root}/merged")


def escape_path(path: str) -> str:
    """`systemd-escape --path`: the unit name of a mount at `path` (without `.mount`)::

        >>> escape_path("/run/ringzero_fsview_web-view/merged")
        'run-ringzero_fsview_web\\\\x2dview-merged'
    """
    parts = [p for p in path.split("/") if p]
    out = []
    for part in parts:
        esc = "".join(c if (c.isascii() and (c.isalnum() or c in ":_.")) else f"\\x{ord(c):02x}" for c in part)
        if esc.startswith("."):
            esc = "\\x2e" + esc[1:]
        out.append(esc)
    return "-".join(out) or "-"


def mount_unit(spec: FilesystemViewSpec) -> str:
    return f"{escape_path(overlay_dirs(spec).merged)}.mount"


def overlay_options(spec: FilesystemViewSpec) -> str:
    """The overlay's mount options (lower dirs top first, as declared)."""
    assert spec.overlay is not None
    d = overlay_dirs(spec)
    return f"lowerdir={':'.join(spec.overlay.lower)},upperdir={d.upper},workdir={d.work}"


def directives(spec: FilesystemViewSpec) -> list[tuple[str, str]]:
    """The drop-in's [Service] lines, one per declared path (systemd accumulates them)."""
    out: list[tuple[str, str]] = []
    if spec.read_only_system:
        out.append(("ProtectSystem", "strict"))
    out += [("ReadWritePaths", p) for p in spec.writable]
    # '-': a hidden path that does not exist on the node is hidden already (systemd would
    # otherwise refuse to start the service)
    out += [("InaccessiblePaths", f"-{p}") for p in spec.hidden]
    out += [("BindReadOnlyPaths" if ro else "BindPaths", f"{src}:{dst}") for src, dst, ro in spec.binds]
    if spec.overlay is not None:
        out.append(("BindPaths", f"{overlay_dirs(spec).merged}:{spec.overlay.target}"))
    return out


def unit_directives(spec: FilesystemViewSpec) -> list[tuple[str, str]]:
    """The drop-in's [Unit] lines (unit names, laid out as they are): the overlay mounted before
    the service starts. `Wants=`, not `Requires=`: unmounting the overlay (its removal) must not
    stop the service, which keeps its own bind of it until restarted on its new view."""
    if spec.overlay is None:
        return []
    unit = mount_unit(spec)
    return [("Wants", unit), ("After", unit)]


@dataclass(frozen=True)
class Expectation:
    """One row: what the mount `path` is on in the workload's view must show.

    `at`: the mount's target must be `path` itself; `options`: each of these `findmnt` options
    (`name` or `name=value`); `fsroot_in`: its root one of these (systemd's inaccessible
    nodes); `fstype`; `same_as`: the file at `path` is the host's `same_as` (dev:inode)."""

    aspect: str
    path: str
    title: str
    at: bool = False
    options: tuple[str, ...] = ()
    fsroot_in: tuple[str, ...] = ()
    fstype: str | None = None
    same_as: str | None = None


def expectations(spec: FilesystemViewSpec) -> list[Expectation]:
    out: list[Expectation] = []
    if spec.read_only_system:
        out += [Expectation(f"read-only:{p}", p, f"{p} is read-only in the view", options=("ro",))
                for p in READ_ONLY_PROBES]
    out += [Expectation(f"writable:{p}", p, f"{p} is writable in the view", options=("rw",)) for p in spec.writable]
    out += [Expectation(f"hidden:{p}", p, f"{p} is hidden in the view (systemd's inaccessible node over it)",
                        at=True, fsroot_in=INACCESSIBLE_ROOTS) for p in spec.hidden]
    out += [Expectation(f"bind:{dst}", dst, f"{src} is bound {'read-only' if ro else 'read-write'} at {dst}",
                        at=True, options=("ro" if ro else "rw",), same_as=src) for src, dst, ro in spec.binds]
    if spec.overlay is not None:
        d = overlay_dirs(spec)
        lower = ":".join(spec.overlay.lower)
        out.append(Expectation(f"overlay:{spec.overlay.target}", spec.overlay.target,
                               f"an overlay of {lower} (upper {d.upper}) at {spec.overlay.target}",
                               at=True, fstype="overlay",
                               options=(f"lowerdir={':'.join(spec.overlay.lower)}", f"upperdir={d.upper}",
                                        f"workdir={d.work}")))
    return out


def pid_script(service: str) -> str:
    """Shell setting $p to the service's main process (empty when it has none): systemd set
    its mount namespace up, every process of the unit starts from it."""
    return (f"m=$(systemctl show -p MainPID --value {shlex.quote(service)}); p=; "
            "[ \"${m:-0}\" != 0 ] && p=$m")


def findmnt_script(service: str) -> str:
    """The mounts of the service's mount namespace as `findmnt -J --list` (`{}` without a process)."""
    return (f"{pid_script(service)}; if [ -n \"$p\" ]; then nsenter -t \"$p\" -m "
            "findmnt -J --list -o TARGET,SOURCE,FSTYPE,OPTIONS,FSROOT; else echo '{}'; fi")


def ids_script(spec: FilesystemViewSpec, service: str) -> str:
    """`host SRC DEV:INODE` and `view DST DEV:INODE` per bind (`facts.stat_ids` parses it)."""
    lines = [pid_script(service)]
    for src, dst, _ro in spec.binds:
        lines.append(f"echo \"host {src} $(stat -c %d:%i -- {shlex.quote(src)} 2>/dev/null)\"")
        lines.append(f"[ -n \"$p\" ] && echo \"view {dst} $(nsenter -t \"$p\" -m stat -c %d:%i -- "
                     f"{shlex.quote(dst)} 2>/dev/null)\"")
    return "; ".join(lines) + "; true"
