"""Small validators shared by the specs. Each raises SpecError with the caller's context."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import SpecError

_SIZE_RE = re.compile(r"^(?P<num>[0-9]+)(?P<unit>[KMGT]?)$")
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
SIZE_ALLOWED = "a byte count as an integer or a string with an optional K, M, G or T suffix (base 1024), e.g. '512M'"
# RFC 1123 label: what a hostname (and so a VM name) may be.
_RFC1123_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
RFC1123_ALLOWED = "1-63 characters of a-z, 0-9 and '-', not starting or ending with '-' (RFC 1123 label)"
# Characters that could end a line or a directive in any of the formats we render into.
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f]")


class Ctx:
    """Which resource a validation is about, so every message names it."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name

    def fail(self, field: str, value: object, allowed: str) -> SpecError:
        return SpecError(self.kind, self.name, field, value, allowed)

    def int_range(self, field: str, value: object, lo: int, hi: int | None = None) -> int:
        allowed = f"an integer from {lo} to {hi}" if hi is not None else f"an integer >= {lo}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, value, allowed)
        if value < lo or (hi is not None and value > hi):
            raise self.fail(field, value, allowed)
        return value

    def positive_number(self, field: str, value: object, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise self.fail(field, value, f"a number from {lo} to {hi}")
        return float(value)

    def size(self, field: str, value: object, *, allow_max: bool = True) -> int | None:
        """A byte size; None means 'max' (no limit)."""
        allowed = SIZE_ALLOWED + (", or 'max'" if allow_max else "")
        if isinstance(value, bool):
            raise self.fail(field, value, allowed)
        if isinstance(value, int):
            if value < 0:
                raise self.fail(field, value, allowed)
            return value
        if isinstance(value, str):
            if allow_max and value in ("max", "infinity"):
                return None
            m = _SIZE_RE.fullmatch(value)
            if m:
                return int(m["num"]) * _SIZE_UNITS[m["unit"]]
        raise self.fail(field, value, allowed)

    def choice(self, field: str, value: object, allowed: Iterable[str]) -> str:
        options = list(allowed)
        if not isinstance(value, str) or value not in options:
            raise self.fail(field, value, "one of " + ", ".join(repr(o) for o in options))
        return value

    def pattern(self, field: str, value: object, regex: re.Pattern[str], allowed: str) -> str:
        if not isinstance(value, str) or not regex.fullmatch(value):
            raise self.fail(field, value, allowed)
        return value

    def rfc1123(self, field: str, value: object) -> str:
        return self.pattern(field, value, _RFC1123_LABEL, RFC1123_ALLOWED)

    def text(self, field: str, value: object, max_len: int = 200) -> str:
        """Free text (descriptions): one line, printable, bounded."""
        allowed = f"one line of at most {max_len} printable characters (no newline or control characters)"
        if not isinstance(value, str) or len(value) > max_len or _UNSAFE_TEXT.search(value):
            raise self.fail(field, value, allowed)
        return value

    def abs_path(self, field: str, value: object, *, globs: bool = False) -> str:
        """An absolute path safe to place in a unit file, a profile or XML unquoted."""
        extra = "*?" if globs else ""
        regex = re.compile(r"^/[A-Za-z0-9._/@+=:" + re.escape(extra) + r"-]*$")
        allowed = (
            "an absolute path of letters, digits and . _ / @ + = : -"
            + (" plus the globs * and ?" if globs else "")
            + " (no spaces, quotes, braces, commas, '#' or newlines), without '..'"
        )
        if not isinstance(value, str) or not regex.fullmatch(value) or "/../" in value + "/" or "//" in value:
            raise self.fail(field, value, allowed)
        return value
