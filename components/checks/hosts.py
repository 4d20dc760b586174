"""Which node is reached how: `--hosts vm1=ssh://root@127.0.0.1:2201,vm2=ssh://…`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_URL = re.compile(r"^ssh://(?:(?P<user>[a-z_][a-z0-9_-]*)@)?(?P<host>[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(?P<port>\d+))?/?$")


@dataclass(frozen=True)
class Target:
    node: str
    host: str
    port: int
    user: str

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"


def parse_hosts(text: str, nodes: list[str]) -> list[Target]:
    """`node=ssh://user@host:port` items, comma separated. A bare URL is allowed when the
    manifest declares exactly one node."""
    out: list[Target] = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        node, sep, url = item.partition("=")
        if not sep:
            if len(nodes) != 1:
                raise ValueError(f"{item!r}: name the node it is (one of {', '.join(nodes)}): NODE=ssh://user@host:port")
            node, url = nodes[0], item
        m = _URL.fullmatch(url)
        if not m:
            raise ValueError(f"{item!r}: expected NODE=ssh://user@host:port")
        if node not in nodes:
            raise ValueError(f"{item!r}: node {node!r} is not in the manifest (declared: {', '.join(nodes)})")
        out.append(Target(node, m["host"], int(m["port"] or 22), m["user"] or "root"))
    return out
