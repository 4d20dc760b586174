"""Checks for Firewall: its unit holds the table loaded, and the table nft lists is the declared one."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping

from ...checks.base import Check, expect_equal
from ...checks.probe import Probe
from ...facts import nft_table
from .expect import FAMILY, listed, unit_name
from .spec import FirewallSpec


class NftUnreadable(Exception):
    """nft did not list the table and did not say it is missing (not installed, no permission): `error`."""


def list_command(spec: FirewallSpec) -> str:
    return shlex.join(["nft", "-j", "list", "table", FAMILY, spec.table])


def _active(node: str, spec: FirewallSpec) -> Check:
    unit = unit_name(spec)

    def verify(p: Probe) -> None:
        expect_equal(f"{unit} ActiveState", "active", p.unit(unit).get("ActiveState"))

    return Check(node, f"firewall:{spec.name}", "active", verify, (f"unit:{unit}",),
                 f"{unit} holds table {FAMILY} {spec.table} loaded")


def _first_difference(want: Mapping[str, object], have: Mapping[str, object]) -> str:
    for name in sorted(set(want) | set(have)):
        w, h = want.get(name), have.get(name)
        if w == h:
            continue
        if not isinstance(w, dict) or not isinstance(h, dict):
            return f"chain {name} is {'missing' if h is None else 'not declared'}"
        for key in ("type", "hook", "prio", "policy"):
            if w.get(key) != h.get(key):
                return f"chain {name} has {key} {h.get(key)!r}, declared {w.get(key)!r}"
        wr, hr = w["rules"], h["rules"]
        assert isinstance(wr, list) and isinstance(hr, list)
        for i in range(max(len(wr), len(hr))):
            a, b = (wr[i] if i < len(wr) else None), (hr[i] if i < len(hr) else None)
            if a != b:
                return (f"chain {name} rule {i}: the node has {json.dumps(b, sort_keys=True)}, declared "
                        f"{json.dumps(a, sort_keys=True)}")
    return "it differs"


def _table(node: str, spec: FirewallSpec) -> Check:
    key = f"shell:{list_command(spec)}"

    def verify(p: Probe) -> None:
        text = p.value(key)
        have = nft_table(text)
        if have is None:
            if text is not None and "No such file or directory" in text:
                raise AssertionError(f"table {FAMILY} {spec.table} is not loaded")
            raise NftUnreadable(f"`{list_command(spec)}` did not list the table: {' '.join((text or '').split())}")
        want = listed(spec)
        if have != want:
            raise AssertionError(f"table {FAMILY} {spec.table} differs from the declaration: "
                                 f"{_first_difference(want, dict(have))}")

    return Check(node, f"firewall:{spec.name}", "table", verify, (key,),
                 f"nft lists table {FAMILY} {spec.table} as declared")


def checks(node: str, spec: FirewallSpec) -> list[Check]:
    return [_active(node, spec), _table(node, spec)]
