"""Which machine is reached how: `--hosts vm1=ssh://root@127.0.0.1:2201,local://`, or an Ansible inventory."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_URL = re.compile(r"^ssh://(?:(?P<user>[a-z_][a-z0-9_-]*)@)?(?P<host>[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(?P<port>\d+))?/?$")


@dataclass(frozen=True)
class Endpoint:
    """A machine `ringzero check` reads: over SSH, or this machine itself (`local://`)."""

    name: str
    url: str  # ssh://user@host:port or local://
    identity_file: str | None = None

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
        return Endpoint(nodes[0], e.url, e.identity_file)
    raise ValueError(f"{e.name!r} is not a node of the manifest (declared: {', '.join(nodes)}); "
                     "name it: NODE=ssh://user@host:port")


def inventory_endpoints(path: str, limit: str | None = None) -> list[Endpoint]:
    """The hosts of an Ansible inventory (any format Ansible reads), with their ansible_host,
    ansible_port, ansible_user and ansible_ssh_private_key_file; ansible_connection=local is
    `local://`. `limit` is an Ansible host pattern (`hypervisors:!staging`)."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    inv = InventoryManager(loader=DataLoader(), sources=[path])
    hosts = inv.get_hosts(limit or "all")
    if not hosts:
        raise ValueError(f"inventory {path}: no hosts{' match ' + repr(limit) if limit else ''}")
    out: list[Endpoint] = []
    for h in hosts:
        v = h.get_vars()
        if v.get("ansible_connection") == "local":
            out.append(Endpoint(h.name, "local://"))
            continue
        addr = str(v.get("ansible_host", h.name))
        if ":" in addr and not addr.startswith("["):
            addr = f"[{addr}]"
        url = f"ssh://{v.get('ansible_user', 'root')}@{addr}:{int(v.get('ansible_port', 22))}"
        if not _URL.fullmatch(url):
            raise ValueError(f"inventory {path}: host {h.name}: cannot make an SSH address of {url!r}")
        key = v.get("ansible_ssh_private_key_file") or v.get("ansible_private_key_file")
        out.append(Endpoint(h.name, url, str(key) if key else None))
    return out
