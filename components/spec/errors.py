"""The one error type a declaration raises: resource, field, bad value, what is allowed."""

from __future__ import annotations


class SpecError(ValueError):
    """A declared value that ringzero refuses, raised before anything changes.

    Example::

        SpecError("CgroupSlice", "web.slice", "cpu_weight", 0, "an integer from 1 to 10000")
        # CgroupSlice 'web.slice': cpu_weight=0 is invalid; allowed: an integer from 1 to 10000
    """

    def __init__(self, kind: str, name: str, field: str, value: object, allowed: str) -> None:
        self.kind = kind
        self.name = name
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{kind} '{name}': {field}={value!r} is invalid; allowed: {allowed}")
