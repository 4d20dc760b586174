"""Which machine is reached how: `--hosts vm1=ssh://root@127.0.0.1:2201,local://`, or an Ansible inventory."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from typing import Any

# A login as useradd(8) and directory services allow it (`john.doe`, `svc-ci`, `AD$`); a host
# name, an ssh_config alias or a bracketed IPv6 address; an optional port.
_URL = re.compile(r"^ssh://(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9_.-]*\$?)@)?"
                  r"(?P<host>[A-Za-z0-9_.-]+|\[[0-9a-fA-F:.%]+\])(?::(?P<port>\d+))?/?$")


@dataclass(frozen=True)
class Endpoint:
    """A machine `ringzero check` reads: over SSH, or this machine itself (`local://`).

    `url` names the login and port when they are known; without them (an inventory host with
    no `ansible_user`/`ansible_port`) ssh decides, from your SSH config, as Ansible lets it.
    `sudo` is the inventory's `ansible_become` (None: the command line's `--sudo` decides);
    `ssh_args` are extra ssh arguments (`ansible_ssh_common_args`, `ansible_ssh_extra_args`)."""

    name: str
    url: str  # ssh://[user@]host[:port] or local://
    identity_file: str | None = None
    sudo: bool | None = None
    ssh_args: tuple[str, ...] = ()

    @property
    def local(self) -> bool:
        return self.url == "local://"

    @property
    def as_root(self) -> bool:
        """Logs in as root (or is this machine, run as root): no sudo needed, and maybe none installed."""
        return self.url.startswith("ssh://root@") or (self.local and os.geteuid() == 0)


_LOCAL = re.compile(r"^local://?$")


def parse_endpoints(text: str, nodes: list[str] | None = None) -> list[Endpoint]:
    """`[NAME=]ssh://user@host:port` or `[NAME=]local://` items, comma separated.

    Unnamed, a machine is called after its address (`127.0.0.1:2222`, `local`). With a
    manifest (`nodes`), names must be its nodes; a bare URL is that node when it declares one.
    The login and port default to root and 22; everything else comes from your SSH config.
    """
    out: list[Endpoint] = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        name, sep, url = item.partition("=")
        if not sep:
            name, url = "", item
        if _LOCAL.fullmatch(url):
            out.append(Endpoint(name or "local", "local://"))
            continue
        m = _URL.fullmatch(url)
        if not m or not re.fullmatch(r"[A-Za-z0-9_.:-]*", name):
            raise ValueError(f"{item!r}: expected [NAME=]ssh://user@host:port or [NAME=]local://")
        port = int(m["port"] or 22)
        url = f"ssh://{m['user'] or 'root'}@{m['host']}:{port}"
        out.append(Endpoint(name or (m["host"] if port == 22 else f"{m['host']}:{port}"), url))
    if nodes is not None:
        out = [_bind(e, nodes, text) for e in out]
    seen = [e.name for e in out]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise ValueError(f"{', '.join(dupes)} named twice; name each machine: NAME=ssh://…")
    return out


def _bind(e: Endpoint, nodes: list[str], text: str) -> Endpoint:
    if e.name in nodes:
        return e
    if len(nodes) == 1 and "=" not in text:
        return Endpoint(nodes[0], e.url, e.identity_file, e.sudo, e.ssh_args)
    raise ValueError(f"{e.name!r} is not a node of the manifest (declared: {', '.join(nodes)}); "
                     "name it: NODE=ssh://user@host:port")


# ansible_connection values that mean "ssh" (smart picks ssh) and "this machine"
_SSH = {"ssh", "smart", "paramiko", "paramiko_ssh", "ansible.builtin.ssh", "ansible.builtin.paramiko_ssh"}
_LOCAL_CONNECTIONS = {"local", "ansible.builtin.local"}


def inventory_endpoints(path: str, limit: str | None = None) -> list[Endpoint]:
    """The hosts of an Ansible inventory (any format and plugin Ansible reads), connected as
    Ansible would connect: Ansible's own inventory, variable and option resolution (host and
    group variables, `group_vars/` and `host_vars/` beside the inventory, templates, ansible.cfg,
    the ssh connection plugin's aliases such as `ansible_ssh_user`). Read: `ansible_host`,
    `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`, `ansible_become*` (sudo, to
    root), `ansible_ssh_common_args` and `ansible_ssh_extra_args` (ProxyJump, …, given to ssh),
    `ansible_connection=local`. `limit` is an Ansible pattern, as `--limit` (`hypervisors:!staging`).

        inventory_endpoints("hosts.ini", "hypervisors")
    """
    try:
        from ansible import constants as C
        from ansible.inventory.manager import InventoryManager
        from ansible.module_utils.parsing.convert_bool import boolean
        from ansible.parsing.dataloader import DataLoader
        from ansible.plugins.loader import become_loader, connection_loader
        from ansible.template import Templar
        from ansible.vars.manager import VariableManager
    except ImportError as e:  # pragma: no cover - the check extra may be installed without Ansible
        raise ValueError(f"inventory {path}: reading an Ansible inventory needs Ansible: "
                         f"pip install 'ringzero[check,ansible]' ({e})") from None

    if not os.path.exists(path):
        raise ValueError(f"inventory {path}: no such file or directory")
    loader = DataLoader()
    inv = InventoryManager(loader=loader, sources=[path])
    if limit:
        inv.subset(limit)
    hosts = inv.get_hosts("all")
    if not hosts:
        raise ValueError(f"inventory {path}: no hosts{' match ' + repr(limit) if limit else ''}")
    variables = VariableManager(loader=loader, inventory=inv)
    # loading the plugins registers their options (and the variables that set them) with Ansible's config
    connection_loader.get("ssh", class_only=True)
    become_loader.get("sudo", class_only=True)

    out: list[Endpoint] = []
    for h in hosts:
        hv = variables.get_vars(host=h, include_hostvars=False)
        templar = Templar(loader=loader, variables=hv)

        def var(name: str, default: Any = None, hv: Any = hv, templar: Any = templar) -> Any:
            return templar.template(hv[name]) if name in hv else default

        def opt(name: str, plugin: str = "ssh", kind: str = "connection", hv: Any = hv, templar: Any = templar) -> Any:
            value = C.config.get_config_value(name, plugin_type=kind, plugin_name=plugin, variables=hv)
            return templar.template(value) if value is not None else None

        where = f"inventory {path}: host {h.name}"
        connection = str(var("ansible_connection", C.DEFAULT_TRANSPORT) or "ssh")
        become = boolean(var("ansible_become", C.DEFAULT_BECOME), strict=False)
        if become:
            method = str(var("ansible_become_method", C.DEFAULT_BECOME_METHOD))
            user = str(opt("become_user", "sudo", "become") or "root")
            if method not in ("sudo", "ansible.builtin.sudo") or user != "root":
                raise ValueError(f"{where}: ansible_become_method={method} ansible_become_user={user}; "
                                 "ringzero check reads as root through sudo only (method sudo, user root)")
        sudo = True if become else None
        if connection in _LOCAL_CONNECTIONS:
            out.append(Endpoint(h.name, "local://", sudo=sudo))
            continue
        if connection not in _SSH:
            raise ValueError(f"{where}: ansible_connection={connection}; ringzero check connects over ssh or local")
        addr = str(opt("host") or h.name)
        if ":" in addr and not addr.startswith("["):
            addr = f"[{addr}]"
        user, port = opt("remote_user"), opt("port")
        url = f"ssh://{f'{user}@' if user else ''}{addr}{f':{int(port)}' if port else ''}"
        if not _URL.fullmatch(url):
            raise ValueError(f"{where}: cannot make an SSH address of {url!r}")
        key = opt("private_key_file")
        args: list[str] = []
        for name in ("ssh_common_args", "ssh_extra_args"):
            try:
                args += shlex.split(str(opt(name) or ""))
            except ValueError as e:
                raise ValueError(f"{where}: ansible_{name}: {e}") from None
        out.append(Endpoint(h.name, url, os.path.expanduser(str(key)) if key else None, sudo, tuple(args)))
    return out

