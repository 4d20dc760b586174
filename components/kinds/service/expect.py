"""What a service ringzero installs looks like on the node: `systemctl show` property -> value.

The node module enables and starts every unit a plan owns (`units[].owned`); these are the
properties that prove it, and the checks are built from them (one check per row).
"""

from __future__ import annotations

# property -> (value, the check's aspect, its title)
UNIT_STATE: tuple[tuple[str, str, str, str], ...] = (
    ("ActiveState", "active", "active", "the service runs"),
    ("UnitFileState", "enabled", "enabled", "the service starts at boot"),
)
