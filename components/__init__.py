"""ringzero: the layer between the hardware and the orchestrator, as code.

Specs (``ringzero.spec``) are plain validated data; components (``ringzero.HypervisorHost``,
``ringzero.VirtualMachine``, ``ringzero.NodePolicies``: a node's policies, applied, …) turn
them into Pulumi resources. Components are imported lazily so that specs, rendering and the
manifest work without a Pulumi engine.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_COMPONENTS = {
    "HypervisorHost": "host",
    "BaseImage": "image",
    "VirtualMachine": "vm",
    "NodePolicies": "node",
    "SshKeyPair": "keys",
}

__all__ = ["__version__", *_COMPONENTS]


def __getattr__(name: str) -> Any:
    if name in _COMPONENTS:
        import importlib

        return getattr(importlib.import_module(f"ringzero.{_COMPONENTS[name]}"), name)
    raise AttributeError(f"module 'ringzero' has no attribute {name!r}")
