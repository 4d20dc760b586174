"""One node, one SSH connection: every read the checks need, fetched in one round trip.

Checks declare their reads as keys (`file:/sys/fs/cgroup/web.slice/memory.max`,
`unit:web.slice`, `proc:ringzero-demo-web.service:status`, `bpftool:` (BPF programs attached
through perf events, per process), `dpkg:qemu-system-x86`, `stat:/dev/kvm` ("660 root kvm"),
`fstype:/sys/fs/cgroup` ("cgroup2fs"), `arch:` (`uname -m`));
`Probe.fetch` runs them all as one shell script over testinfra's connection, so a node's
whole suite costs one SSH session plus a few active probes (a denied read, a filtered
syscall, a traced exec). Nothing here waits without bound: each key's command runs under
coreutils `timeout`, so does the whole script and every `Probe.run`, and a local watchdog
bounds the call itself (a dead connection); a timeout is a `ProbeTimeout`, which the check
engine reports as `error`, never as a pass or a failure. Example::

    probe = Probe(testinfra.get_host("ssh://root@127.0.0.1:2201"))
    probe.fetch(["file:/etc/hostname", "unit:ssh.service"])
    probe.value("file:/etc/hostname")
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Iterable
from typing import Any, Protocol

from ..facts import systemctl_show

READ_TIMEOUT_S = 20  # one key of the batched read (a `modprobe -c` under TCG takes seconds)
FETCH_TIMEOUT_S = 180  # the whole batched read
RUN_TIMEOUT_S = 30  # an active probe, unless it asks for another bound
KILL_AFTER_S = 5  # then SIGKILL, for a command that ignores SIGTERM
# The local watchdog's margin over the remote bound: connecting (ssh's ConnectTimeout) and
# the round trip. Past it the call is reported as timed out even if ssh itself is stuck.
WATCHDOG_SLACK_S = 60
TIMED_OUT_RC = (124, 128 + 9)  # timeout(1): TERM sent; KILL sent after --kill-after

# Each key kind, as the shell that prints its value. "$1" is the key's argument. `t` bounds
# each command; rc 124/137 are timeout's own (TERM, then KILL) and print the timeout marker.
_SCRIPT = r"""
sep=$(printf '\036')
t() { timeout -k 2 "$RZ_READ_TIMEOUT" "$@"; }
late() { [ "$1" = 124 ] || [ "$1" = 137 ]; }
UNIT_PROPS=ActiveState,SubState,LoadState,UnitFileState,MainPID,ControlGroup,FragmentPath,DropInPaths
UNIT_PROPS=$UNIT_PROPS,SystemCallFilter,SystemCallErrorNumber,SystemCallArchitectures,ExecStart
for key in "$@"; do
  kind=${key%%:*}; arg=${key#*:}; rc=0
  printf '%s%s\n' "$sep" "$key"
  case $kind in
    file) t cat -- "$arg" 2>/dev/null; rc=$?
          if [ $rc != 0 ] && ! late $rc; then
            [ -e "$arg" ] && printf '%s' "${sep}unreadable" || printf '%s' "${sep}missing"; fi ;;
    unit) t systemctl show "$arg" -p "$UNIT_PROPS" 2>&1; rc=$? ;;
    proc) unit=${arg%%:*}; f=${arg#*:}; pid=$(t systemctl show -p MainPID --value "$unit" 2>/dev/null); rc=$?
          late $rc || { { [ "${pid:-0}" != 0 ] && t cat "/proc/$pid/$f" 2>/dev/null; } || { rc=$?; late $rc ||
                                                                  printf '%s' "${sep}missing"; }; } ;;
    bpftool) t bpftool -j perf 2>&1; rc=$? ;;
    stat) t stat -c '%a %U %G' -- "$arg" 2>/dev/null || { rc=$?; late $rc || printf '%s' "${sep}missing"; } ;;
    fstype) t stat -f -c %T -- "$arg" 2>/dev/null || { rc=$?; late $rc || printf '%s' "${sep}missing"; } ;;
    dpkg) t dpkg-query -W -f '${Package} ${db:Status-Status} ${Version}\n' "$arg" 2>/dev/null ||
          { rc=$?; late $rc || printf '%s' "${sep}missing"; } ;;
    arch) t uname -m 2>&1; rc=$? ;;
    shell) t sh -c "$arg" 2>&1; rc=$? ;;
    *) printf '%s' "${sep}unknown" ;;
  esac
  late "$rc" && printf '%s' "${sep}timeout"
  printf '\n'
done
"""
MISSING = "\x1emissing"
UNREADABLE = "\x1eunreadable"
TIMED_OUT = "\x1etimeout"


class Unreadable(Exception):
    """A value exists on the node but the login cannot read it (not root, no --sudo): the
    checks that need it are undecided, never passed or failed."""


class ProbeTimeout(Exception):
    """A read or an active probe did not finish within its bound: the check is undecided (`error`)."""


class CommandResult(Protocol):
    rc: int
    stdout: str
    stderr: str


class Host(Protocol):
    def run(self, command: str, *args: str) -> Any: ...


def parse(output: str) -> dict[str, str | None]:
    """The script's output: records of "\\x1e<key>\\n<value>\\n"; a missing value is None."""
    out: dict[str, str | None] = {}
    for record in output.split("\x1e")[1:]:
        if record.startswith(("missing", "unknown", "unreadable", "timeout")):
            # the separator inside a value: the marker of the previous key
            last = next(reversed(out))
            out[last] = (UNREADABLE if record.startswith("unreadable") else
                         TIMED_OUT if record.startswith("timeout") else None)
            continue
        key, _, value = record.partition("\n")
        out[key] = value[:-1] if value.endswith("\n") else value
    return out


class Probe:
    """The state of one node as the checks see it."""

    def __init__(self, host: Host, name: str = "") -> None:
        self.host = host
        self.name = name
        self.values: dict[str, str | None] = {}

    def fetch(self, keys: Iterable[str]) -> None:
        todo = sorted(set(keys) - set(self.values))
        if not todo:
            return
        res = self._bounded(FETCH_TIMEOUT_S,
                            f"RZ_READ_TIMEOUT={READ_TIMEOUT_S} timeout -k {KILL_AFTER_S} {FETCH_TIMEOUT_S} "
                            "sh -c %s ringzero-probe" + " %s" * len(todo), _SCRIPT, *todo)
        if res.rc in TIMED_OUT_RC:
            raise ProbeTimeout(f"{self.name}: reading node state did not finish within {FETCH_TIMEOUT_S} s")
        if res.rc != 0:
            raise AssertionError(f"{self.name}: reading node state failed (rc={res.rc}): {res.stderr.strip()}")
        self.values.update(parse(res.stdout))
        for k in todo:
            self.values.setdefault(k, None)

    def value(self, key: str) -> str | None:
        if key not in self.values:
            self.fetch([key])
        value = self.values[key]
        if value == UNREADABLE:
            raise Unreadable(f"{self.name}: {key.partition(':')[2]} exists but this login cannot read it "
                             "(connect as root, or use sudo)")
        if value == TIMED_OUT:
            raise ProbeTimeout(f"{self.name}: reading {key} did not finish within {READ_TIMEOUT_S} s")
        return value

    def file(self, path: str) -> str | None:
        return self.value(f"file:{path}")

    def unit(self, unit: str) -> dict[str, str]:
        return systemctl_show(self.value(f"unit:{unit}"))

    def run(self, command: str, *args: str, timeout: int = RUN_TIMEOUT_S) -> CommandResult:
        """An active probe: `command` (with `%s` arguments quoted, as testinfra does) under
        `timeout`; raises ProbeTimeout when it does not finish in `timeout` seconds."""
        line = command % tuple(shlex.quote(a) for a in args) if args else command
        res = self._bounded(timeout, f"timeout -k {KILL_AFTER_S} {int(timeout)} sh -c %s", line)
        if res.rc in TIMED_OUT_RC:
            raise ProbeTimeout(f"{self.name}: `{line}` did not finish within {timeout} s")
        return res

    def _bounded(self, timeout: float, command: str, *args: str) -> CommandResult:
        """`host.run` with a local watchdog: the remote `timeout` ends a slow command, this ends
        the wait for one whose connection hangs (the thread is left to ssh's keepalive)."""
        box: list[Any] = []

        def call() -> None:
            try:
                box.append(self.host.run(command, *args))
            except BaseException as e:  # handed to the caller below
                box.append(e)

        worker = threading.Thread(target=call, name=f"ringzero-probe-{self.name}", daemon=True)
        worker.start()
        worker.join(timeout + KILL_AFTER_S + WATCHDOG_SLACK_S)
        if not box:
            raise ProbeTimeout(f"{self.name}: the connection did not answer within "
                               f"{timeout + KILL_AFTER_S + WATCHDOG_SLACK_S:.0f} s")
        if isinstance(box[0], BaseException):
            raise box[0]
        res: CommandResult = box[0]
        return res
