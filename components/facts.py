"""Node state as ringzero reads it: every parser of what a Linux node shows, once.

The Ansible module (shipped to the node as module_utils `ringzero_facts`, a link to this file)
and the compliance checks (`from ..facts import …`) parse the same outputs with these
functions, so what converges a node and what proves it read it alike. Standard library only,
Python 3.11 (Debian 12's): this file runs on the node. Each parser takes the text as the node
prints it (None, an empty string or garbage give an empty or None result, never an exception)::

    from ringzero.facts import systemctl_show, apparmor_profiles
    systemctl_show("ActiveState=active\\nMainPID=12\\n")["MainPID"]        # '12'
    apparmor_profiles("ringzero-demo (enforce)\\n")                        # {'ringzero-demo': 'enforce'}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TypedDict, cast

__all__ = [
    "APPARMOR_PROFILES",
    "DPKG_FORMAT",
    "BpfPerfEntry",
    "CgroupEntry",
    "DpkgPackage",
    "Mount",
    "ProcStatus",
    "SecurityAssessment",
    "apparmor_profiles",
    "bpf_attachments",
    "bpftool_cgroup",
    "bpftool_perf",
    "cgroup_events",
    "covering_mount",
    "dpkg_packages",
    "findmnt_mounts",
    "lsns_namespaces",
    "meminfo",
    "module_param",
    "module_param_path",
    "nft_table",
    "nft_tables",
    "proc_cgroup",
    "proc_ns",
    "proc_status",
    "seccomp_mode",
    "stat_ids",
    "systemctl_show",
    "systemctl_show_units",
    "systemd_security",
    "unified_cgroup",
]

APPARMOR_PROFILES = "/sys/kernel/security/apparmor/profiles"
# `dpkg-query -W -f DPKG_FORMAT PKG…`: what dpkg_packages parses
DPKG_FORMAT = "${Package} ${db:Status-Status} ${Version}\n"


# ---- systemd -----------------------------------------------------------------------------------
def systemctl_show(text: str | None) -> dict[str, str]:
    """`systemctl show UNIT -p A,B` of one unit ("key=value" lines) as key -> value.

    A value keeps everything after the first "=" (`ExecStart={ path=/bin/x ; … }`); lines
    without one are ignored::

        >>> systemctl_show("ActiveState=active\\nMainPID=12\\nEnvironment=A=1\\n")
        {'ActiveState': 'active', 'MainPID': '12', 'Environment': 'A=1'}
    """
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def systemctl_show_lists(text: str | None) -> dict[str, list[str]]:
    """`systemctl show UNIT -p A,B` as key -> every value printed for it, in order.

    Some properties print one line per entry (systemd 252: `SocketBindAllow=`), where
    `systemctl_show` would keep only the last; a property not set may print no line at all::

        >>> systemctl_show_lists("SocketBindAllow=ipv6:udp5000-5100\\nSocketBindAllow=tcp18095\\nLoadState=loaded\\n")
        {'SocketBindAllow': ['ipv6:udp5000-5100', 'tcp18095'], 'LoadState': ['loaded']}
    """
    out: dict[str, list[str]] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out.setdefault(key, []).append(value)
    return out


def systemctl_show_units(text: str | None, units: list[str] | tuple[str, ...]) -> dict[str, dict[str, str]]:
    """`systemctl show U1 U2 … -p A,B` (one call for many units) as unit -> key -> value.

    systemctl prints one block per unit, in the order given, blocks separated by an empty
    line (a unit it does not know still gets its block: `LoadState=not-found`). A unit whose
    block is absent (systemctl stopped early) maps to an empty dict::

        >>> systemctl_show_units("ActiveState=active\\n\\nActiveState=inactive\\n", ["a.slice", "b.service"])
        {'a.slice': {'ActiveState': 'active'}, 'b.service': {'ActiveState': 'inactive'}}
    """
    blocks: list[list[str]] = [[]]
    for line in (text or "").splitlines():
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    if not blocks[-1]:
        blocks.pop()
    out = {u: systemctl_show("\n".join(b)) for u, b in zip(units, blocks, strict=False)}
    for u in units:
        out.setdefault(u, {})
    return out


# `systemd-analyze security` (systemd 252, src/analyze/analyze-security.c): a table per unit,
# then its overall line. `→` and the emoji are "->" and ":-(" (or the like) without UTF-8.
_SECURITY_OVERALL = re.compile(r"^(?:→|->) Overall exposure level for (?P<unit>\S+): "
                               r"(?P<score>[0-9]+\.[0-9]) (?P<level>[A-Z]+)\b")
# A table row: its mark (✓/✗, or +/- without UTF-8), the setting, the description, and the
# exposure the setting adds (only where it adds some: the settings that are not in place).
_SECURITY_ROW = re.compile(r"^\S{1,2} (?P<name>\S+)\s+(?P<what>.*?)(?:\s+(?P<exposure>[0-9]+\.[0-9]))?\s*$")


@dataclass(frozen=True)
class SecurityAssessment:
    """One unit's `systemd-analyze security` result: its overall exposure (0.0 safest, 10.0
    least safe), systemd's word for it, and the settings that add to it, largest first
    (setting, exposure it adds, systemd's description)."""

    unit: str
    exposure: float
    level: str
    offending: tuple[tuple[str, float, str], ...]

    def top(self, n: int = 5) -> str:
        """The `n` largest contributions, as a person reads them::

            PrivateNetwork= 0.5 (Service has access to the host's network), ...
        """
        return ", ".join(f"{name} {value} ({what})" for name, value, what in self.offending[:n])


def systemd_security(text: str | None) -> dict[str, SecurityAssessment]:
    """`systemd-analyze security [--offline=true] UNIT…` (its table output, not --json: systemd
    252's JSON has no overall exposure) as unit -> SecurityAssessment. A unit without its
    overall line (not found, the tool failed) is absent; warnings mixed in are ignored::

        >>> systemd_security("  NAME  DESCRIPTION  EXPOSURE\\n✗ PrivateNetwork=   Service has access to the host's "
        ...                  "network    0.5\\n→ Overall exposure level for web.service: 9.6 UNSAFE 😨\\n")
        ... # doctest: +NORMALIZE_WHITESPACE
        {'web.service': SecurityAssessment(unit='web.service', exposure=9.6, level='UNSAFE',
         offending=(('PrivateNetwork=', 0.5, "Service has access to the host's network"),))}
    """
    out: dict[str, SecurityAssessment] = {}
    rows: list[tuple[str, float, str]] = []
    in_table = False
    for line in (text or "").splitlines():
        overall = _SECURITY_OVERALL.match(line.strip())
        if overall:
            ranked = sorted(rows, key=lambda r: -r[1])  # stable: systemd's order among equals
            out[overall["unit"]] = SecurityAssessment(overall["unit"], float(overall["score"]), overall["level"],
                                                      tuple(ranked))
            rows, in_table = [], False
        elif line.lstrip().startswith("NAME ") and line.rstrip().endswith("EXPOSURE"):
            rows, in_table = [], True
        elif in_table:
            row = _SECURITY_ROW.match(line)
            if row and row["exposure"] is not None:
                rows.append((row["name"], float(row["exposure"]), row["what"].strip()))
    return out


# ---- AppArmor ----------------------------------------------------------------------------------
def apparmor_profiles(text: str | None) -> dict[str, str]:
    """/sys/kernel/security/apparmor/profiles ("name (mode)" lines) as profile name -> mode.

    Names may hold spaces; the mode is the last word::

        >>> apparmor_profiles("ringzero-demo (enforce)\\n/usr/bin/man (complain)\\nnvidia_modprobe//kmod (enforce)\\n")
        {'ringzero-demo': 'enforce', '/usr/bin/man': 'complain', 'nvidia_modprobe//kmod': 'enforce'}
    """
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        name, sep, mode = line.rpartition(" ")
        if name and sep:
            out[name] = mode.strip("()")
    return out


# ---- /proc/<pid> -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcStatus:
    """The fields of /proc/<pid>/status ringzero reads (`fields`: all of them, as text)."""

    name: str
    pid: int | None
    seccomp: int | None  # 0 off, 1 strict, 2 filter; None where the kernel has no seccomp
    seccomp_filters: int | None
    no_new_privs: bool | None
    nspid: tuple[int, ...]  # the pid in each pid namespace, outermost first
    cap_eff: int | None
    fields: dict[str, str]


def _int(value: str | None, base: int = 10) -> int | None:
    try:
        return int(value, base) if value is not None else None
    except ValueError:
        return None


def proc_status(text: str | None) -> ProcStatus:
    """/proc/<pid>/status ("Key:\\tvalue" lines)::

        >>> s = proc_status("Name:\\tsleep\\nPid:\\t577\\nNSpid:\\t577\\t1\\nCapEff:\\t0000000000000000\\n"
        ...                 "NoNewPrivs:\\t1\\nSeccomp:\\t2\\nSeccomp_filters:\\t1\\n")
        >>> (s.name, s.pid, s.nspid, s.seccomp, s.seccomp_filters, s.no_new_privs, s.cap_eff)
        ('sleep', 577, (577, 1), 2, 1, True, 0)
    """
    fields: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    nnp = _int(fields.get("NoNewPrivs"))
    nspid = tuple(n for n in (_int(v) for v in fields.get("NSpid", "").split()) if n is not None)
    return ProcStatus(name=fields.get("Name", ""), pid=_int(fields.get("Pid")), seccomp=_int(fields.get("Seccomp")),
                      seccomp_filters=_int(fields.get("Seccomp_filters")),
                      no_new_privs=None if nnp is None else bool(nnp), nspid=nspid,
                      cap_eff=_int(fields.get("CapEff"), 16), fields=fields)


def seccomp_mode(status: str | None) -> int | None:
    """The `Seccomp:` field of /proc/<pid>/status (0 off, 1 strict, 2 filter); None if absent::

        >>> seccomp_mode("Name:\\tsleep\\nSeccomp:\\t2\\nSeccomp_filters:\\t1\\n")
        2
    """
    return proc_status(status).seccomp


@dataclass(frozen=True)
class CgroupEntry:
    """One line of /proc/<pid>/cgroup: "hierarchy-id:controllers:path"."""

    hierarchy: int
    controllers: tuple[str, ...]
    path: str


def proc_cgroup(text: str | None) -> list[CgroupEntry]:
    """/proc/<pid>/cgroup; on a cgroup v2 node one line, "0::/path"::

        >>> proc_cgroup("0::/web.slice/ringzero-demo-web.service\\n")
        [CgroupEntry(hierarchy=0, controllers=(), path='/web.slice/ringzero-demo-web.service')]
    """
    out: list[CgroupEntry] = []
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        hierarchy = _int(parts[0]) if len(parts) == 3 else None
        if hierarchy is None:
            continue
        out.append(CgroupEntry(hierarchy, tuple(c for c in parts[1].split(",") if c), parts[2]))
    return out


def unified_cgroup(text: str | None) -> str | None:
    """The cgroup v2 (unified hierarchy, "0::") path of /proc/<pid>/cgroup; None if it has none::

        >>> unified_cgroup("0::/system.slice/ssh.service\\n")
        '/system.slice/ssh.service'
    """
    return next((e.path for e in proc_cgroup(text) if e.hierarchy == 0 and not e.controllers), None)


def cgroup_events(text: str | bytes | None) -> dict[str, int]:
    """A cgroup's `cgroup.events` ("populated 1\\nfrozen 0\\n") as key -> value::

        >>> cgroup_events("populated 1\\nfrozen 0\\n")
        {'populated': 1, 'frozen': 0}
    """
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(" ")
        n = _int(value.strip())
        if key and sep and n is not None:
            out[key] = n
    return out


def meminfo(text: str | None) -> dict[str, int]:
    """/proc/meminfo as key -> figure: bytes for the "kB" lines, plain counts for the others::

        >>> meminfo("MemTotal:        2014548 kB\\nHugePages_Total:       0\\n")
        {'MemTotal': 2062897152, 'HugePages_Total': 0}
    """
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, sep, rest = line.partition(":")
        words = rest.split()
        n = _int(words[0]) if sep and words else None
        if n is None:
            continue
        out[key] = n * 1024 if words[1:] == ["kB"] else n
    return out


# ---- eBPF --------------------------------------------------------------------------------------
class BpfPerfEntry(TypedDict, total=False):
    """One entry of `bpftool -j perf`: a BPF program attached through a perf event of a process."""

    pid: int
    fd: int
    prog_id: int
    fd_type: str  # tracepoint, kprobe, kretprobe, uprobe, uretprobe
    tracepoint: str
    func: str
    filename: str
    offset: int


# The optional fields of a `bpftool -j perf` entry that are kept, with their JSON types.
_PERF_FIELDS: dict[str, type] = {"fd": int, "prog_id": int, "offset": int, "fd_type": str, "tracepoint": str,
                                 "func": str, "filename": str}


def bpftool_perf(text: str | None) -> list[BpfPerfEntry]:
    """`bpftool -j perf` (a JSON list); anything else (an error message, no bpftool) is []::

        >>> bpftool_perf('[{"pid":577,"fd":9,"prog_id":90,"fd_type":"tracepoint","tracepoint":"sys_enter_execve"}]')
        [{'pid': 577, 'fd': 9, 'prog_id': 90, 'fd_type': 'tracepoint', 'tracepoint': 'sys_enter_execve'}]
    """
    try:
        entries = json.loads(text or "")
    except ValueError:
        return []
    out: list[BpfPerfEntry] = []
    for e in entries if isinstance(entries, list) else []:
        if not (isinstance(e, dict) and isinstance(e.get("pid"), int)):
            continue
        entry = {"pid": e["pid"]} | {k: e[k] for k, kind in _PERF_FIELDS.items() if isinstance(e.get(k), kind)}
        out.append(cast(BpfPerfEntry, entry))
    return out


def bpf_attachments(text: str | None) -> dict[int, list[str]]:
    """`bpftool -j perf` as pid -> the attach points of the BPF programs that process holds::

        >>> bpf_attachments('[{"pid":577,"prog_id":90,"fd_type":"tracepoint","tracepoint":"sys_enter_execve"}]')
        {577: ['tracepoint:sys_enter_execve (prog 90)']}
    """
    out: dict[int, list[str]] = {}
    for e in bpftool_perf(text):
        point = e.get("tracepoint") or e.get("func") or e.get("filename") or e.get("fd_type", "?")
        out.setdefault(e["pid"], []).append(f"{e.get('fd_type', '?')}:{point} (prog {e.get('prog_id')})")
    return out


# ---- packages ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DpkgPackage:
    """A package as dpkg knows it: `status` is installed, config-files, not-installed, …"""

    status: str
    version: str


def dpkg_packages(text: str | None) -> dict[str, DpkgPackage]:
    """`dpkg-query -W -f DPKG_FORMAT PKG…` as package -> status and version. A package listed
    once per architecture counts as installed if one of them is::

        >>> dpkg_packages("qemu-system-x86 installed 1:7.2+dfsg-7+deb12u7\\nxen-utils-common not-installed \\n")
        ... # doctest: +NORMALIZE_WHITESPACE
        {'qemu-system-x86': DpkgPackage(status='installed', version='1:7.2+dfsg-7+deb12u7'),
         'xen-utils-common': DpkgPackage(status='not-installed', version='')}
    """
    out: dict[str, DpkgPackage] = {}
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        seen = out.get(words[0])
        if seen is None or seen.status != "installed":
            out[words[0]] = DpkgPackage(words[1], words[2] if len(words) > 2 else "")
    return out


# ---- kernel modules ----------------------------------------------------------------------------
def module_param_path(module: str, param: str) -> str:
    """Where a loaded module shows a parameter's live value::

        >>> module_param_path("kvm_intel", "nested")
        '/sys/module/kvm_intel/parameters/nested'
    """
    return f"/sys/module/{module}/parameters/{param}"


def module_param(text: str | bytes | None) -> str | None:
    """A /sys/module/<m>/parameters/<p> value, booleans as modprobe takes them ("Y" -> "1",
    "N" -> "0"); None when the module is not loaded (no file)::

        >>> module_param("Y\\n"), module_param("1\\n"), module_param(None)
        ('1', '1', None)
    """
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    value = text.strip()
    return {"Y": "1", "N": "0"}.get(value, value)


_ARGV_RE = re.compile(r"argv\[\]=(.*?) ;")


def exec_start_argv(value: str | None) -> list[list[str]]:
    """The command lines of a unit's `ExecStart` as `systemctl show` prints it (systemd 252:
    one `{ path=… ; argv[]=… ; … }` line per command; `systemctl_show` keeps the last). systemd
    joins argv with single spaces and quotes nothing, so a word holding a space comes back as
    two: compare joined forms when that matters (tests/unit/facts/systemctl-show-execstart.txt)::

        >>> exec_start_argv("{ path=/usr/bin/sleep ; argv[]=/usr/bin/sleep 60 ; ignore_errors=no ; "
        ...                 "start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }")
        [['/usr/bin/sleep', '60']]
    """
    return [m.split(" ") for m in _ARGV_RE.findall(value or "")]


def proc_environ(text: str | None) -> dict[str, str] | None:
    """/proc/<pid>/environ (NUL-separated NAME=value); None when it could not be read::

        >>> proc_environ("PATH=/usr/bin\\0RINGZERO_LANDLOCK=web sha256=ab abi=2 dropped=-\\0")["PATH"]
        '/usr/bin'
    """
    if text is None:
        return None
    out: dict[str, str] = {}
    for item in text.split("\0"):
        name, sep, value = item.partition("=")
        if sep and name:
            out[name] = value
    return out


def proc_cmdline(text: str | None) -> list[str] | None:
    """/proc/<pid>/cmdline (NUL-separated argv)::

        >>> proc_cmdline("/usr/bin/sleep\\x0060\\x00")
        ['/usr/bin/sleep', '60']
    """
    if text is None:
        return None
    return text.rstrip("\0").split("\0") if text.strip("\0") else []


@dataclass(frozen=True)
class LandlockMarker:
    """What ringzero's Landlock launcher left in the environment of the command it ran."""

    name: str
    sha256: str
    abi: int | None
    dropped: tuple[str, ...]


def landlock_marker(value: str | None) -> LandlockMarker | None:
    """`RINGZERO_LANDLOCK=<name> sha256=<hex> abi=<n> dropped=<a,b or ->`; None if absent or malformed::

        >>> landlock_marker("web sha256=ab12 abi=2 dropped=truncate,bind_tcp")
        LandlockMarker(name='web', sha256='ab12', abi=2, dropped=('truncate', 'bind_tcp'))
    """
    words = (value or "").split(" ")
    fields = dict(w.partition("=")[::2] for w in words[1:])
    if not words[0] or "sha256" not in fields:
        return None
    dropped = fields.get("dropped", "-")
    return LandlockMarker(words[0], fields["sha256"], _int(fields.get("abi")),
                          () if dropped in ("", "-") else tuple(dropped.split(",")))


# ---- nftables and cgroup BPF programs ----------------------------------------------------------
def _nft_objects(text: str | None) -> list[dict[str, object]]:
    try:
        doc = json.loads(text or "")
    except ValueError:
        return []
    items = doc.get("nftables") if isinstance(doc, dict) else None
    return [o for o in items if isinstance(o, dict)] if isinstance(items, list) else []


def nft_tables(text: str | None) -> list[tuple[str, str]]:
    """`nft -j list tables` (or `list ruleset`) as (family, name), in listing order::

        >>> nft_tables('{"nftables": [{"metainfo": {}}, {"table": {"family": "inet", "name": "x", "handle": 1}}]}')
        [('inet', 'x')]
    """
    out = []
    for o in _nft_objects(text):
        t = o.get("table")
        if isinstance(t, dict) and isinstance(t.get("family"), str) and isinstance(t.get("name"), str):
            out.append((t["family"], t["name"]))
    return out


def nft_table(text: str | None) -> dict[str, dict[str, object]] | None:
    """`nft -j list table FAMILY NAME` as chain -> {type, hook, prio, policy, rules}, each rule
    {"expr": [...]} (plus "comment" when it has one), handles left out; None when the text is
    not such a listing (the table does not exist: nft prints an error)::

        >>> nft_table('{"nftables": [{"table": {"family": "inet", "name": "t", "handle": 1}},'
        ...           '{"chain": {"family": "inet", "table": "t", "name": "input", "handle": 1, "type": "filter",'
        ...           '"hook": "input", "prio": 0, "policy": "drop"}}, {"rule": {"family": "inet", "table": "t",'
        ...           '"chain": "input", "handle": 2, "expr": [{"accept": null}]}}]}')["input"]
        {'type': 'filter', 'hook': 'input', 'prio': 0, 'policy': 'drop', 'rules': [{'expr': [{'accept': None}]}]}
    """
    objects = _nft_objects(text)
    if not any("table" in o for o in objects):
        return None
    chains: dict[str, dict[str, object]] = {}
    for o in objects:
        c = o.get("chain")
        if isinstance(c, dict) and isinstance(c.get("name"), str):
            chains[c["name"]] = {k: c[k] for k in ("type", "hook", "prio", "policy") if k in c} | {"rules": []}
    for o in objects:
        r = o.get("rule")
        if isinstance(r, dict) and r.get("chain") in chains:
            rule: dict[str, object] = {"expr": r.get("expr", [])}
            if "comment" in r:
                rule["comment"] = r["comment"]
            rules = chains[str(r["chain"])]["rules"]
            if isinstance(rules, list):  # always: each chain starts with a list
                rules.append(rule)
    return chains


def bpftool_cgroup(text: str | None) -> list[tuple[str, str]]:
    """`bpftool -j cgroup show CGROUP` as (attach_type, program name), in listing order::

        >>> bpftool_cgroup('[{"id":42,"attach_type":"cgroup_inet_ingress","name":"sd_fw_ingress"}]')
        [('cgroup_inet_ingress', 'sd_fw_ingress')]
    """
    try:
        entries = json.loads(text or "")
    except ValueError:
        return []
    return [(str(e.get("attach_type", "")), str(e.get("name", ""))) for e in entries if isinstance(e, dict)] \
        if isinstance(entries, list) else []


# ---- namespaces and mounts ---------------------------------------------------------------------
def proc_ns(text: str | None) -> dict[int, dict[str, int]]:
    """`PID TYPE:[INODE]` lines (`echo "$pid $(readlink /proc/$pid/ns/$t)"`) as pid -> type -> inode.

    A line whose link could not be read (`PID ` alone) is skipped::

        >>> proc_ns("1 net:[4026531840]\\n812 net:[4026532301]\\n812 \\n")
        {1: {'net': 4026531840}, 812: {'net': 4026532301}}
    """
    out: dict[int, dict[str, int]] = {}
    for line in (text or "").splitlines():
        pid, _sep, link = line.strip().partition(" ")
        kind, sep, rest = link.partition(":[")
        inode = _int(rest.rstrip("]")) if sep and rest.endswith("]") else None
        if pid.isdigit() and kind and inode is not None:
            out.setdefault(int(pid), {})[kind] = inode
    return out


def lsns_namespaces(text: str | None) -> dict[str, int]:
    """`lsns -J -p PID -o NS,TYPE,PID` as type -> namespace inode (lsns prints the numbers as
    numbers, or as strings in older util-linux)::

        >>> lsns_namespaces('{"namespaces": [{"ns": 4026531840, "type": "net", "pid": 1}]}')
        {'net': 4026531840}
    """
    try:
        doc = json.loads(text or "")
    except ValueError:
        return {}
    out: dict[str, int] = {}
    for entry in doc.get("namespaces", []) if isinstance(doc, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("type"), str):
            ns = _int(str(entry.get("ns")))
            if ns is not None:
                out[entry["type"]] = ns
    return out


@dataclass(frozen=True)
class Mount:
    """One row of `findmnt -J --list -o TARGET,SOURCE,FSTYPE,OPTIONS,FSROOT`."""

    target: str
    source: str
    fstype: str
    options: tuple[str, ...]
    fsroot: str

    def option(self, name: str) -> str | None:
        """The value of `name=value`, "" for a flag that is set, None if absent."""
        for o in self.options:
            key, sep, value = o.partition("=")
            if key == name:
                return value if sep else ""
        return None


def findmnt_mounts(text: str | None) -> list[Mount]:
    """`findmnt -J --list -o TARGET,SOURCE,FSTYPE,OPTIONS,FSROOT` in mount order::

        >>> [m.target for m in findmnt_mounts('{"filesystems": [{"target": "/", "source": "/dev/vda1",'
        ...   ' "fstype": "ext4", "options": "ro,relatime", "fsroot": "/"}]}')]
        ['/']
    """
    try:
        doc = json.loads(text or "")
    except ValueError:
        return []
    out: list[Mount] = []
    for fs in doc.get("filesystems", []) if isinstance(doc, dict) else []:
        if isinstance(fs, dict) and isinstance(fs.get("target"), str):
            out.append(Mount(fs["target"], str(fs.get("source") or ""), str(fs.get("fstype") or ""),
                             tuple(str(fs.get("options") or "").split(",")), str(fs.get("fsroot") or "")))
    return out


def covering_mount(mounts: list[Mount], path: str) -> Mount | None:
    """The mount `path` is on (what `findmnt -T path` answers): the deepest target above it,
    the last one mounted when several share that target::

        >>> ms = [Mount("/", "a", "ext4", ("rw",), "/"), Mount("/usr", "a", "ext4", ("ro",), "/usr")]
        >>> covering_mount(ms, "/usr/bin").target, covering_mount(ms, "/etc").target
        ('/usr', '/')
    """
    best: Mount | None = None
    for m in mounts:
        under = m.target == "/" or path == m.target or path.startswith(m.target.rstrip("/") + "/")
        if under and (best is None or len(m.target) >= len(best.target)):
            best = m
    return best


def stat_ids(text: str | None) -> dict[str, str]:
    """`WHERE PATH DEV:INODE` lines (`stat -c %d:%i`) as "WHERE PATH" -> "DEV:INODE"; a path
    that could not be stat'ed has no entry::

        >>> stat_ids("host /srv/a 2049:1312\\nview /data 2049:1312\\nview /gone \\n")
        {'host /srv/a': '2049:1312', 'view /data': '2049:1312'}
    """
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) == 3 and ":" in words[2]:
            out[f"{words[0]} {words[1]}"] = words[2]
    return out
