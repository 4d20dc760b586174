"""What a node looks like, to show that running the checks changed nothing on it.

A snapshot, taken over SSH as root: the hostname, the clock's offset from this machine's,
the running units, the long-lived processes, and every path under /etc, /var and /tmp with
its type, mode, owner and (for files) a content hash. Example::

    with unchanged(guest, "the compliance suite"):
        run_the_suite()
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

# Paths that change by themselves while the node runs, or record (rather than hold) state:
PRUNED = (
    # logs: the journal, wtmp/lastlog/btmp (every SSH login of the checker writes them), the
    # eBPF agent's output (/var/log/ringzero: it logs every exec, the probes' included) and the
    # kernel's audit lines for the AppArmor denials the probes provoke on purpose
    "/var/log",
    # last-trigger stamps, written when a timer elapses on its own
    "/var/lib/systemd/timers",
    # apt-daily.timer: package lists and caches it refreshes by itself
    "/var/cache/apt", "/var/lib/apt/lists", "/var/lib/apt/periodic",
    # man-db.timer, logrotate.timer and dpkg-db-backup.timer, also daily and on their own
    "/var/cache/man", "/var/lib/logrotate", "/var/backups",
)
# Prints one record per line: `<section> <value>`.
_SCRIPT = r"""
set -u
echo "hostname $(hostname) $(cat /proc/sys/kernel/hostname) $(cat /proc/sys/kernel/domainname)"
# running units; login sessions (session-N.scope) are the SSH logins themselves, this one's
# included: their processes are looked at below. libvirtd is socket-activated and leaves after
# two idle minutes (Debian's LIBVIRTD_ARGS="--timeout 120"): a check that asks it whether it
# answers starts it again on its socket, by design, as any client does; neither counts.
systemctl list-units --state=running --plain --no-legend --no-pager |
  awk '$1 !~ /^session-[0-9]+\.scope$/ && $1 != "libvirtd.service" {print "unit", $1}'
# processes by pid, name and cgroup (a restarted service shows as a change), except kernel
# threads (kworkers come and go), this snapshot's own login session, root's user manager
# (started and stopped with the logins) and other sessions' sshd (the checker's connections
# closing, which sshd does on its own schedule)
self=$(sed -n 's/^0:://p' /proc/self/cgroup)
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  cg=$(sed -n 's/^0:://p' "$d/cgroup" 2>/dev/null) && [ -n "$cg" ] || continue
  ppid=$(awk '/^PPid:/ {print $2}' "$d/status" 2>/dev/null) || continue
  { [ "$pid" = 2 ] || [ "$ppid" = 2 ]; } && continue
  comm=$(cat "$d/comm" 2>/dev/null) || continue
  case $cg in "$self"|/user.slice/user-0.slice/user@0.service/*) continue ;; esac
  case $cg in /user.slice/*) [ "$comm" = sshd ] && continue ;; esac
  [ "$cg" = /system.slice/libvirtd.service ] && continue
  echo "process $pid $comm $cg"
done
# every path: type, mode, owner; files by content (an mtime-only touch is no change)
find /etc /var /tmp PRUNE -prune -o -printf 'path %p %y %m %u:%g %l\n'
find /etc /var /tmp PRUNE -prune -o -type f -print0 | xargs -0 -r md5sum | sed 's/^/hash /'
"""


class Guest(Protocol):
    def ssh(self, command: str, timeout: int = ...) -> str: ...


@dataclass(frozen=True)
class NodeState:
    hostname: str
    clock_offset_s: float  # the node's clock minus this machine's
    units: frozenset[str]
    processes: frozenset[str]
    paths: dict[str, str]  # path -> "type mode owner [link target] [md5]"


def _clock_offset(guest: Guest) -> float:
    t0 = time.time()
    node = float(guest.ssh("date +%s.%N"))
    return node - (t0 + time.time()) / 2


def snapshot(guest: Guest) -> NodeState:
    prune = " -o ".join(f"-path {p}" for p in PRUNED)
    offset = _clock_offset(guest)
    out = guest.ssh(_SCRIPT.replace("PRUNE", rf"\( {prune} \)"), timeout=600)
    hostname, units, processes, paths = "", set(), set(), {}
    hashes: dict[str, str] = {}
    for line in out.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "hostname":
            hostname = rest
        elif kind == "unit":
            units.add(rest)
        elif kind == "process":
            processes.add(rest)
        elif kind == "path":
            path, _, attrs = rest.partition(" ")
            paths[path] = attrs.strip()
        elif kind == "hash":
            digest, _, path = rest.partition("  ")
            hashes[path] = digest
    for path, digest in hashes.items():
        paths[path] = f"{paths.get(path, '?')} {digest}"
    return NodeState(hostname, offset, frozenset(units), frozenset(processes), paths)


def changes(before: NodeState, after: NodeState, clock_tolerance_s: float = 10.0) -> list[str]:
    """What differs, one line each (empty: the node is unchanged)."""
    out = []
    if before.hostname != after.hostname:
        out.append(f"hostname: {before.hostname!r} -> {after.hostname!r}")
    step = after.clock_offset_s - before.clock_offset_s
    if abs(step) > clock_tolerance_s:
        out.append(f"clock stepped by {step:+.1f} s")
    out += [f"unit stopped: {u}" for u in sorted(before.units - after.units)]
    out += [f"unit started: {u}" for u in sorted(after.units - before.units)]
    out += [f"process gone: {p}" for p in sorted(before.processes - after.processes)]
    out += [f"process new: {p}" for p in sorted(after.processes - before.processes)]
    for path in sorted(before.paths.keys() | after.paths.keys()):
        was, now = before.paths.get(path), after.paths.get(path)
        if was != now:
            out.append(f"{path}: {was or 'absent'} -> {now or 'absent'}")
    return out


@contextmanager
def unchanged(guest: Guest, what: str) -> Iterator[None]:
    """Asserts that the node is as it was once the block has run."""
    before = snapshot(guest)
    # a snapshot that read nothing would compare equal to anything
    assert before.hostname and before.units and before.processes and len(before.paths) > 1000, before
    yield
    diff = changes(before, snapshot(guest))
    assert not diff, f"{what} changed the node ({len(diff)} differences):\n" + "\n".join(diff[:60])
