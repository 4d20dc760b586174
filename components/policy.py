"""The shared shape of a node policy component: a spec, the node it applies to, its files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, ClassVar

import pulumi


class PolicyComponent(pulumi.ComponentResource):
    """Base of CgroupSlice, AppArmorProfile, SeccompProfile and EbpfAgent.

    Exposes the files the policy puts on its node and their content hash; the node's
    PlaybookRun applies them and the compliance suite proves them, both from the same spec.
    """

    TYPE: ClassVar[str]
    KIND: ClassVar[str]

    def __init__(
        self, name: str, spec: Any, node: str, renderer: Callable[[Any], dict[str, str]],
        opts: pulumi.ResourceOptions | None,
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.spec = spec
        self.node = node
        files = renderer(spec)
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        self.files = pulumi.Output.from_input(sorted(files))
        self.content_hash = pulumi.Output.from_input(digest)
        self.register_outputs({"node": node, "kind": self.KIND, "files": self.files, "contentHash": self.content_hash})
