"""AppArmorProfileSpec: an AppArmor profile from structured rules or raw text."""

from __future__ import annotations

import fnmatch
import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ... import toolcache
from ...spec._check import Ctx
from ..service.spec import SERVICE_ALLOWED, SERVICE_RE

MODES = ("enforce", "complain")
# apparmor_parser 3.0 (Debian 12): what a file rule's permissions may be. Access letters each
# once, 'w' and 'a' exclusive ("Conflict 'a' and 'w' perms are mutually exclusive"), at most
# one exec transition, which allow rules must qualify ("'x' must be preceded by exec
# qualifier") and deny rules must not.
ACCESS = "rwaklm"
EXEC_MODES = ("ix", "px", "Px", "ux", "Ux", "cx", "Cx", "pix", "Pix", "cix", "Cix", "pux", "Pux", "cux", "Cux")
_PERMS_RE = re.compile(r"^(?P<a>[rwaklm]*)(?P<x>(?:[pPcC][iu]?|[iuU])?x)?(?P<b>[rwaklm]*)$")
FILE_PERMS_ALLOWED = (
    "AppArmor file permissions: letters of r w a k l m, each once, not both w and a, plus at most "
    "one exec mode (ix px Px ux Ux cx Cx pix Pix cix Cix pux Pux cux Cux; a deny rule takes plain x)"
)
# Flags that set a profile's mode: raw text may only repeat the declared one (the node loads
# the profile with -C for complain, and a contradicting flag would silently win or lose).
MODE_FLAGS = ("enforce", "complain", "kill", "unconfined", "prompt", "default_allow")
# Directories of /etc/apparmor.d (apparmor, libvirt-daemon-system): never a profile file.
APPARMOR_DIRS = ("abi", "abstractions", "tunables", "local", "disable", "force-complain", "cache", "libvirt")
# Profiles Debian 12's packages install (file or profile names): Debian names profile files by
# the confined binary's path ("usr.sbin.libvirtd", "usr.bin.man", "sbin.dhclient"), plus a few
# short names: apparmor (lsb_release, nvidia_modprobe), man-db (man_groff, man_filter),
# libvirt-daemon-system (libvirtd, virt-aa-helper, libvirt-<uuid> per domain), docker/lxc.
# Replacing one changes how a packaged program is confined: refused unless adopted.
OS_PROFILES = (
    "usr.*", "sbin.*", "bin.*", "lib.*", "opt.*", "lsb_release", "nvidia_modprobe", "man_groff", "man_filter",
    "libvirtd", "virt-aa-helper", "libvirt-*", "docker-default", "lxc-*", "unconfined",
)
ADOPT_ALLOWED = "set adopt: true to take it over (the original is saved and restored on removal)"


def perms_problem(perms: object, deny: bool) -> str | None:
    """Why apparmor_parser would refuse `perms` on a file rule; None when it is valid."""
    m = _PERMS_RE.fullmatch(perms) if isinstance(perms, str) else None
    if not m or not perms:
        return "unknown permission letters"
    letters = m["a"] + m["b"]
    if len(set(letters)) != len(letters):
        return "a letter twice"
    if "w" in letters and "a" in letters:
        return "w and a together"
    x = m["x"]
    if x == "x" and not deny:
        return "x without an exec qualifier"
    if x and x != "x" and deny:
        return "an exec qualifier in a deny rule"
    return None


# What apparmor_parser reads besides the profile: its includes, its ABI files, its config and
# the feature sets it may compile against (an answer is asked again when any of them changes).
APPARMOR_READS = tuple(Path(p) for p in ("/etc/apparmor.d/abstractions", "/etc/apparmor.d/tunables",
                                         "/etc/apparmor.d/abi", "/etc/apparmor", "/usr/share/apparmor-features"))


class _ParserTimedOut(Exception):
    pass


@functools.cache
def apparmor_parse_error(text: str) -> str | None:
    """apparmor_parser's own verdict on a profile (`-Q -K`: parse and compile, load nothing);
    None when it compiles or when apparmor_parser is not on PATH (the validate tier requires it).
    The verdict is remembered across runs (ringzero.toolcache)."""
    exe = shutil.which("apparmor_parser")
    if exe is None:
        return None
    try:
        return toolcache.remembered("apparmor_parser", text, lambda: _compile(exe, text), reads=APPARMOR_READS)
    except _ParserTimedOut:
        return "apparmor_parser -Q -K did not finish within 60 s"


def _compile(exe: str, text: str) -> str | None:
    with tempfile.NamedTemporaryFile("w", suffix=".profile") as f:
        f.write(text)
        f.flush()
        try:
            res = subprocess.run([exe, "-Q", "-K", f.name], capture_output=True, text=True, timeout=60,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise _ParserTimedOut from None
    if res.returncode == 0:
        return None
    errors = [ln for ln in res.stderr.splitlines() if "Cache read/write disabled" not in ln and ln.strip()]
    return (errors[0] if errors else res.stderr.strip()[-300:]).replace(f.name, "<profile>")


def raw_problem(raw: str, name: str, mode: str) -> tuple[object, str] | None:
    """(offending text, what is allowed) when raw profile text does more than define profile
    `name` in `mode`; None when it is one such profile."""
    depth = 0
    headers: list[str] = []
    for line in raw.splitlines():
        code = line.strip()
        if depth == 0 and code:
            include = re.fullmatch(r"#?include\s+(?:if\s+exists\s+)?<([^>]*)>", code)
            if code.startswith("#") and not include:
                pass  # a comment
            elif include:
                if not include[1].startswith("tunables/"):
                    return code, "includes at the top level only of <tunables/...> (other files may define profiles)"
            elif re.fullmatch(r"abi\s+<[^>]*>\s*,", code) or re.fullmatch(r"@\{\w+\}\s*\+?=.*", code):
                pass
            elif re.match(r"profile\s", code):
                headers.append(code)
                if len(headers) > 1:
                    return code, (f"exactly one top-level profile block, 'profile {name} ...' "
                                  "(another would replace the profile of that name)")
            else:
                return code, (f"only 'profile {name} ... {{ }}' at the top level (plus abi, tunables includes, "
                              "variables and comments): a path-named block would define another profile")
        depth += code.count("{") - code.count("}") if not code.startswith("#") else 0
    if not headers:
        return None, f"text declaring 'profile {name} ...' (the profile name must match name)"
    header = headers[0]
    pname = header.split()[1]
    if pname != name:
        return pname, f"text declaring 'profile {name} ...' (the profile name must match name)"
    flags = re.search(r"(?:flags\s*=\s*)?\(([^)]*)\)", header)
    declared = {f.strip() for f in re.split(r"[,\s]+", flags[1]) if f.strip()} if flags else set()
    contra = sorted((declared & set(MODE_FLAGS)) - {mode})
    if contra:
        return header, (f"flags that agree with mode={mode!r}: no {', '.join(contra)} "
                        "(the declared mode decides how the node loads the profile)")
    return None


def os_owned(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in OS_PROFILES)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NAME_ALLOWED = (
    "1-128 characters of letters, digits and . _ - (no '/', spaces, braces or '#'), starting with a letter or digit"
)
CAPABILITIES = (
    "audit_control", "audit_read", "audit_write", "block_suspend", "bpf", "checkpoint_restore",
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "ipc_lock", "ipc_owner",
    "kill", "lease", "linux_immutable", "mac_admin", "mac_override", "mknod", "net_admin",
    "net_bind_service", "net_broadcast", "net_raw", "perfmon", "setfcap", "setgid", "setpcap",
    "setuid", "sys_admin", "sys_boot", "sys_chroot", "sys_module", "sys_nice", "sys_pacct",
    "sys_ptrace", "sys_rawio", "sys_resource", "sys_time", "sys_tty_config", "syslog", "wake_alarm",
)
NETWORK_FAMILIES = ("inet", "inet6", "unix", "netlink", "packet")
NETWORK_TYPES = ("stream", "dgram", "raw", "seqpacket")
ABSTRACTIONS = ("base", "nameservice", "openssl", "ssl_certs", "consoles", "python", "bash", "user-tmp")


@dataclass(frozen=True)
class FileRule:
    """`path perms,` (or `deny path perms,`). Example: ``FileRule("/srv/www/**", "r")``."""

    path: str
    perms: str
    deny: bool = False


@dataclass(frozen=True)
class NetworkRule:
    family: str
    type: str | None = None
    deny: bool = False


@dataclass(frozen=True)
class AppArmorProfileSpec:
    """A profile attached to an executable (or named only, for `aa-exec -p` and services).

    Example::

        AppArmorProfileSpec(name="ringzero-web", attach="/usr/bin/python3.11", mode="enforce",
                            files=(FileRule("/srv/www/**", "r"),),
                            capabilities=("net_bind_service",))
    """

    name: str
    mode: str = "enforce"
    attach: str | None = None
    abstractions: tuple[str, ...] = ("base",)
    files: tuple[FileRule, ...] = ()
    capabilities: tuple[str, ...] = ()
    network: tuple[NetworkRule, ...] = ()
    # Raw profile text replaces every structured rule; its profile name must be `name`.
    raw: str | None = None
    # Take over a profile the OS or a package installed under this name (saved, restored on removal).
    adopt: bool = False
    # Services that run under this profile (systemd's AppArmorProfile=, a drop-in per service).
    services: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ctx = Ctx("AppArmorProfile", str(self.name))
        if not isinstance(self.services, tuple):
            raise ctx.fail("services", self.services, "a tuple of service unit names")
        for i, svc in enumerate(self.services):
            ctx.pattern(f"services[{i}]", svc, SERVICE_RE, SERVICE_ALLOWED)
        ctx.pattern("name", self.name, _NAME_RE, NAME_ALLOWED)
        if self.name in APPARMOR_DIRS:
            raise ctx.fail("name", self.name, "a name that is not a directory of /etc/apparmor.d ("
                           + ", ".join(APPARMOR_DIRS) + ")")
        if not isinstance(self.adopt, bool):
            raise ctx.fail("adopt", self.adopt, "true or false")
        if os_owned(self.name) and not self.adopt:
            raise ctx.fail("name", self.name, "a profile name the OS or its packages do not use ("
                           + ", ".join(OS_PROFILES) + "), or " + ADOPT_ALLOWED)
        ctx.choice("mode", self.mode, MODES)
        if self.attach is not None:
            ctx.abs_path("attach", self.attach, globs=True)
        for i, a in enumerate(self.abstractions):
            ctx.choice(f"abstractions[{i}]", a, ABSTRACTIONS)
        for i, r in enumerate(self.files):
            ctx.abs_path(f"files[{i}].path", r.path, globs=True)
            why = perms_problem(r.perms, r.deny)
            if why is not None:
                raise ctx.fail(f"files[{i}].perms", r.perms, f"{FILE_PERMS_ALLOWED}; not {why}")
        for i, c in enumerate(self.capabilities):
            ctx.choice(f"capabilities[{i}]", c, CAPABILITIES)
        for i, n in enumerate(self.network):
            ctx.choice(f"network[{i}].family", n.family, NETWORK_FAMILIES)
            if n.type is not None:
                ctx.choice(f"network[{i}].type", n.type, NETWORK_TYPES)
        if self.raw is not None:
            if self.files or self.capabilities or self.network:
                raise ctx.fail("raw", "<text>", "raw text or structured rules, not both")
            if not isinstance(self.raw, str) or "\x00" in self.raw:
                raise ctx.fail("raw", self.raw, "profile text")
            problem = raw_problem(self.raw, self.name, self.mode)
            if problem is not None:
                raise ctx.fail("raw", problem[0], problem[1])
        # The rendered profile through apparmor_parser itself (when installed), so that what it
        # refuses fails preview rather than half-way through apply.
        from .render import render_profile  # the renderer imports the specs

        (text,) = render_profile(self).values()
        err = apparmor_parse_error(text)
        if err is not None:
            raise ctx.fail("raw" if self.raw is not None else "files", "<profile>",
                           f"a profile apparmor_parser -Q -K compiles ({err})")

    @property
    def file_name(self) -> str:
        """Where the profile lives on the node: /etc/apparmor.d/<file_name>."""
        return self.name
