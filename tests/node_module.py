"""The Ansible node module (`playbooks/library/ringzero_node.py`) loaded as a plain Python
module, for unit tests that drive `converge` with a fake AnsibleModule (its module_utils are
importable through tests/unit/conftest.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

NODE_MODULE = Path(__file__).resolve().parents[1] / "playbooks" / "library" / "ringzero_node.py"


def load_node_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ringzero_node", NODE_MODULE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
