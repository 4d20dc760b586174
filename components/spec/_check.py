"""Small validators shared by the specs. Each raises SpecError with the caller's context."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import SpecError

_SIZE_RE = re.compile(r"^(?P<num>[0-9]+)(?:\.(?P<frac>[0-9]+))?(?P<unit>[KMGT]?)$")
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
SIZE_ALLOWED = (
    "a byte count as an integer or a string with an optional K, M, G or T suffix (base 1024, "
    "a fraction such as '1.5G' allowed), e.g. '512M'"
)
# systemd keeps limits in a uint64 and reads UINT64_MAX as "infinity": a byte count must stay
# below it, or systemd 252 logs "out of range, ignoring" and the unit gets no limit at all.
UINT64_MAX = 2**64 - 1
# systemd 252 parse_permyriad(): "N%", "N.N%" or "N.NN%" from 0 to 100 (resolved on the node).
_PERCENT_RE = re.compile(r"^(?P<int>[0-9]{1,3})(?:\.(?P<frac>[0-9]{1,2}))?%$")
# RFC 1123 label: what a hostname (and so a VM name) may be.
_RFC1123_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
RFC1123_ALLOWED = "1-63 characters of a-z, 0-9 and '-', not starting or ending with '-' (RFC 1123 label)"
# Characters that could end a line or a directive in any of the formats we render into.
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f]")


def permyriad(value: str) -> int | None:
    """'12.5%' -> 1250 (hundredths of a percent, as systemd stores it); None if not a percentage."""
    m = _PERCENT_RE.fullmatch(value)
    if not m:
        return None
    v = int(m["int"]) * 100 + int((m["frac"] or "0").ljust(2, "0"))
    return v if v <= 10000 else None


def size_bytes(value: str) -> int | None:
    """'1.5G' -> 1610612736, as systemd's parse_size() (base 1024) computes it; None if malformed."""
    m = _SIZE_RE.fullmatch(value)
    if not m:
        return None
    factor = _SIZE_UNITS[m["unit"]]
    frac = m["frac"] or ""
    # systemd adds the fraction times the factor, truncated: 1.5G = 1G + 512M.
    return int(m["num"]) * factor + (int(frac) * factor // 10 ** len(frac) if frac else 0)




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

    def size(
        self, field: str, value: object, *, allow_max: bool = True, allow_zero: bool = True,
        allow_percent: bool = False,
    ) -> int | str | None:
        """A byte size; None means 'max' (no limit); with allow_percent, a percentage stays a
        normalised string ('50%'), since systemd resolves it against the node's memory.

        allow_zero=False for limits where systemd 252 reads 0 as out of range and ignores the
        directive (MemoryMax=0, MemoryHigh=0): the slice would silently get no limit.
        """
        lo = 0 if allow_zero else 1
        allowed = SIZE_ALLOWED + f", from {lo} to {UINT64_MAX - 1} bytes"
        if not allow_zero:
            allowed += " (systemd ignores 0 here, leaving no limit)"
        if allow_percent:
            allowed += ", or a percentage of the node's memory from " + (
                "0% to 100%" if allow_zero else "0.01% to 100%") + " with at most two decimals ('50%', '12.5%')"
        if allow_max:
            allowed += ", or 'max'"
        if isinstance(value, bool):
            raise self.fail(field, value, allowed)
        if isinstance(value, int):
            if not lo <= value < UINT64_MAX:
                raise self.fail(field, value, allowed)
            return value
        if isinstance(value, str):
            if allow_max and value in ("max", "infinity"):
                return None
            if allow_percent and value.endswith("%"):
                p = permyriad(value)
                if p is None or p < lo:
                    raise self.fail(field, value, allowed)
                return value
            b = size_bytes(value)
            if b is not None and lo <= b < UINT64_MAX:
                return b
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

    def canonical_path(self, field: str, value: object) -> str:
        """An absolute path with no '.' or '..' component: it names the file it appears to name."""
        path = self.abs_path(field, value)
        if "/./" in path + "/" or "/../" in path + "/":
            raise self.fail(field, value, "an absolute path without '.' or '..' components (no /./ or /../)")
        return path
