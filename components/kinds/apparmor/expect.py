"""What a declared AppArmor profile looks like on the node: loaded in its mode (the plan tells
the node module to load it so; the check reads the kernel's profile list back), and which
reads under it the kernel denies or allows (the checks try them with aa-exec)."""

from __future__ import annotations

import re

from .spec import AppArmorProfileSpec

# A read the checks may try for real: a plain path, no globs or variables.
PLAIN_PATH = re.compile(r"^/[A-Za-z0-9._/@+=:-]+$")


def loaded_mode(spec: AppArmorProfileSpec) -> str:
    """The mode the kernel lists the profile in once loaded (`enforce` or `complain`)."""
    return spec.mode


def reads(spec: AppArmorProfileSpec) -> list[tuple[str, bool, bool]]:
    """(path, a deny rule, denied on the node) for each plain read rule: a deny rule denies
    only in enforce mode (complain mode logs it); an allow rule lets the read through."""
    return [(r.path, r.deny, r.deny and spec.mode == "enforce")
            for r in spec.files if "r" in r.perms and PLAIN_PATH.fullmatch(r.path)]
