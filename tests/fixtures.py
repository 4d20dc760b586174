"""Declarations shared by the test tiers: the reference stack's config, as specs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from ringzero.spec import Topology, from_data

ROOT = Path(__file__).resolve().parent.parent


def load_local_config() -> dict[str, Any]:
    """Pulumi.local.yaml's `config:` mapping, as the stack reads it (namespaced keys)."""
    return dict(yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())["config"])


def local_config() -> dict[str, Any]:
    """The `ringzero:*` sections of Pulumi.local.yaml, image paths under a fixed fake directory
    (so golden files do not depend on where the checkout lives)."""
    raw = load_local_config()
    data = {k.split(":", 1)[1]: copy.deepcopy(v) for k, v in raw.items() if k.startswith("ringzero:")}
    for img in data.get("images", []):
        for key in ("source", "kernel", "initrd"):
            if key in img and not img[key].startswith("/"):
                img[key] = "/var/lib/ringzero/images/" + Path(img[key]).name
    return data


def local_topology() -> Topology:
    return from_data(local_config())
