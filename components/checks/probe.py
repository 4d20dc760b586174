"""One node, one SSH connection: every read the checks need, fetched in one round trip.

Checks declare their reads as keys (`file:/sys/fs/cgroup/web.slice/memory.max`,
`unit:web.slice`, `proc:ringzero-demo-web.service:status`, `bpftool:` (BPF programs attached
through perf events, per process), `dpkg:qemu-system-x86`, `stat:/dev/kvm` ("660 root kvm"),
`fstype:/sys/fs/cgroup` ("cgroup2fs"));
`Probe.fetch` runs them all as one shell script over testinfra's connection, so a node's
whole suite costs one SSH session plus a few active probes (a denied read, a filtered
syscall, a traced exec). Example::

    probe = Probe(testinfra.get_host("ssh://root@127.0.0.1:2201"))
    probe.fetch(["file:/etc/hostname", "unit:ssh.service"])
    probe.value("file:/etc/hostname")
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

# Each key kind, as the shell that prints its value. "$1" is the key's argument.
_SCRIPT = r"""
sep=$(printf '\036')
UNIT_PROPS=ActiveState,SubState,LoadState,UnitFileState,MainPID,ControlGroup,FragmentPath,DropInPaths
UNIT_PROPS=$UNIT_PROPS,SystemCallFilter,SystemCallErrorNumber,SystemCallArchitectures
for key in "$@"; do
  kind=${key%%:*}; arg=${key#*:}
  printf '%s%s\n' "$sep" "$key"
  case $kind in
    file) cat -- "$arg" 2>/dev/null || { [ -e "$arg" ] && printf '%s' "${sep}unreadable" ||
                                         printf '%s' "${sep}missing"; } ;;
    unit) systemctl show "$arg" -p "$UNIT_PROPS" 2>&1 ;;
    proc) unit=${arg%%:*}; f=${arg#*:}; pid=$(systemctl show -p MainPID --value "$unit" 2>/dev/null)
          { [ "${pid:-0}" != 0 ] && cat "/proc/$pid/$f" 2>/dev/null; } || printf '%s' "${sep}missing" ;;
    bpftool) bpftool -j perf 2>&1 ;;
    stat) stat -c '%a %U %G' -- "$arg" 2>/dev/null || printf '%s' "${sep}missing" ;;
    fstype) stat -f -c %T -- "$arg" 2>/dev/null || printf '%s' "${sep}missing" ;;
    dpkg) dpkg-query -W -f '${db:Status-Status} ${Version}' "$arg" 2>/dev/null || printf '%s' "${sep}missing" ;;
    shell) sh -c "$arg" 2>&1 ;;
    *) printf '%s' "${sep}unknown" ;;
  esac
  printf '\n'
done
"""
MISSING = "\x1emissing"
UNREADABLE = "\x1eunreadable"


class Unreadable(Exception):
    """A value exists on the node but the login cannot read it (not root, no --sudo): the
    checks that need it are undecided, never passed or failed."""


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
        if record.startswith(("missing", "unknown", "unreadable")):
            # the separator inside a value: the marker of the previous key
            last = next(reversed(out))
            out[last] = UNREADABLE if record.startswith("unreadable") else None
            continue
        key, _, value = record.partition("\n")
        out[key] = value[:-1] if value.endswith("\n") else value
    return out


def properties(text: str | None) -> dict[str, str]:
    """`systemctl show` output as a mapping."""
    return dict(line.split("=", 1) for line in (text or "").splitlines() if "=" in line)


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
        res = self.host.run("sh -c %s ringzero-probe" + " %s" * len(todo), _SCRIPT, *todo)
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
        return value

    def file(self, path: str) -> str | None:
        return self.value(f"file:{path}")

    def unit(self, unit: str) -> dict[str, str]:
        return properties(self.value(f"unit:{unit}"))

    def run(self, command: str, *args: str) -> CommandResult:
        res: CommandResult = self.host.run(command, *args)
        return res
