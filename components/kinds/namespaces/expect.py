"""THE table of the namespaces kind: a declared private namespace ▶ what makes it private
(a systemd 252 directive, or the launcher) ▶ what the node shows (`/proc/<pid>/ns/<type>` of
the workload against PID 1's, `lsns`, `systemctl show`).

The checks compare every type of NAMESPACES: a declared private one must differ from PID 1's,
every other one must equal it. render lays out `directives()`; kind.py wraps the service in
`launcher()`; checks.py reads `ns_script()`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from .spec import NAMESPACES, NamespacesSpec

UNSHARE = "/usr/bin/unshare"  # util-linux, Essential in Debian 12


@dataclass(frozen=True)
class Row:
    """One namespace type: the directive systemd 252 makes it private with (None: the launcher
    does) and the unshare(1) flag the launcher and the RestrictNamespaces probe use."""

    ns: str
    directive: str | None
    flag: str


ROWS: tuple[Row, ...] = (
    Row("cgroup", None, "--cgroup"),
    Row("ipc", "PrivateIPC", "--ipc"),
    Row("mnt", "PrivateMounts", "--mount"),
    Row("net", "PrivateNetwork", "--net"),
    Row("pid", None, "--pid"),
    Row("user", "PrivateUsers", "--user"),
    Row("uts", "ProtectHostname", "--uts"),
)
BY_NS = {r.ns: r for r in ROWS}
assert tuple(BY_NS) == NAMESPACES


def directives(spec: NamespacesSpec) -> list[tuple[str, str]]:
    """The drop-in's [Service] lines, in table order."""
    out = [(r.directive, "yes") for r in ROWS if r.directive and r.ns in spec.private]
    if spec.may_create is not None:
        out.append(("RestrictNamespaces", restrict_value(spec.may_create)))
    return out


def restrict_value(may_create: tuple[str, ...]) -> str:
    """RestrictNamespaces=: the allow list in table order, or `yes` (none allowed)."""
    allowed = [r.ns for r in ROWS if r.ns in may_create]
    return " ".join(allowed) if allowed else "yes"


def restrict_shown(may_create: tuple[str, ...]) -> str:
    """What `systemctl show -p RestrictNamespaces --value` prints for that value, as a set of
    words: systemd 252 prints the allowed types in its own order, `yes` when none is allowed
    (and `no` when the unit is unrestricted)."""
    return " ".join(r.ns for r in ROWS if r.ns in may_create) or "yes"


def launcher(spec: NamespacesSpec) -> tuple[str, ...]:
    """The words before the service's command for the types systemd 252 cannot make private:
    `unshare --pid --fork --kill-child [--mount-proc] --cgroup --`; () when none is declared.
    With a pid namespace the workload is unshare's child (the MainPID is unshare itself)."""
    if not any(ns in spec.private for ns in ("pid", "cgroup")):
        return ()
    words = [UNSHARE]
    if "pid" in spec.private:
        words += ["--pid", "--fork", "--kill-child"]
        if "mnt" in spec.private:
            words.append("--mount-proc")
    if "cgroup" in spec.private:
        words.append("--cgroup")
    return (*words, "--")


def forks(spec: NamespacesSpec) -> bool:
    """Whether the workload is the child of the service's main process (unshare --fork)."""
    return "pid" in spec.private


def expected(spec: NamespacesSpec) -> dict[str, bool]:
    """Namespace type -> whether the workload's differs from PID 1's."""
    return {ns: ns in spec.private for ns in NAMESPACES}


def workload_pid_script(service: str, forked: bool) -> str:
    """Shell that sets $p to the workload's pid (empty when the service has no process):
    the main process, or its first child when the launcher forked the workload."""
    s = shlex.quote(service)
    line = f"m=$(systemctl show -p MainPID --value {s}); p=; [ \"${{m:-0}}\" != 0 ] && p=$m"
    if forked:
        line += "; [ -n \"$p\" ] && p=$(cut -d' ' -f1 /proc/$m/task/$m/children 2>/dev/null)"
    return line


def ns_script(service: str, forked: bool) -> str:
    """Prints `PID TYPE:[INODE]` for PID 1 and the workload, every type (`facts.proc_ns`
    parses it); nothing for the workload when the service has no process."""
    types = " ".join(NAMESPACES)
    return (f"{workload_pid_script(service, forked)}; for t in {types}; do "
            "echo \"1 $(readlink /proc/1/ns/$t)\"; [ -n \"$p\" ] && echo \"$p $(readlink /proc/$p/ns/$t)\"; done; true")


def lsns_script(service: str, forked: bool) -> str:
    """`lsns -J` of the workload's namespaces (`facts.lsns_namespaces` parses it); `{}` when
    the service has no process."""
    return (f"{workload_pid_script(service, forked)}; "
            "if [ -n \"$p\" ]; then lsns -J -p \"$p\" -o NS,TYPE,PID; else echo '{}'; fi")


def restrict_probe(value: str, ns: str) -> str:
    """A transient unit that tries to create a `ns` namespace (`unshare --<ns> /bin/true`),
    under `RestrictNamespaces=value` when value is not None. It only creates an empty namespace
    that ends with it: nothing on the node changes."""
    props = ["-p", f"RestrictNamespaces={value}"] if value else []
    return shlex.join(["systemd-run", "--quiet", "--wait", "--pipe", "--collect", "-p", "RuntimeMaxSec=20",
                       *props, UNSHARE, BY_NS[ns].flag, "/bin/true"])
