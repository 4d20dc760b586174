"""The type tokens of ringzero's dynamic resources (SshKeyPair, SshReady, PlaybookRun, ComplianceCheck).

Pulumi routes a dynamic resource to its Python provider by the type's package, so the type
must stay `pulumi-python:dynamic…`; `dyn.Resource`'s class keywords name the rest, and
`pulumi preview` shows `pulumi-python:dynamic/ringzero:PlaybookRun` instead of
`pulumi-python:dynamic:Resource` for each. Example::

    class PlaybookRun(dyn.Resource, module="ringzero", name="PlaybookRun"): ...
"""

from __future__ import annotations

import pulumi

# Stacks written before the types had names hold them as `pulumi-python:dynamic:Resource`:
# the alias makes Pulumi update those in place instead of replacing them (a replacement would
# regenerate the SSH keys and re-apply every node).
DYNAMIC_ALIASES: list[pulumi.Input[str | pulumi.Alias]] = [pulumi.Alias(type_="pulumi-python:dynamic:Resource")]
