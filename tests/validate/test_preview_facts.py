"""What preview accepts and refuses agrees with the real tools: systemd-analyze verify (systemd
252), apparmor_parser -Q -K and bpftrace -d on this machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ringzero.kinds.ebpf import spec as ebpf_spec
from ringzero.spec import AppArmorProfileSpec, SliceSpec, SpecError
from tests.unit.test_validation import ACCEPTED, render_any


def _verify_slice(tmp_path: Path, name: str, text: str) -> list[str]:
    """systemd-analyze verify's complaints about one slice unit file."""
    (tmp_path / name).write_text(text)
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:", "SYSTEMD_LOG_LEVEL": "warning"}
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / name)],
                         capture_output=True, text=True, timeout=60, env=env)
    return [ln for ln in (res.stdout + res.stderr).splitlines() if name in ln]


SLICES = [c for c in ACCEPTED if c[2].endswith(".slice")]
PROFILES = [c for c in ACCEPTED if c[2].startswith("/etc/apparmor.d/")]


@pytest.mark.parametrize(("build", "path"), [(c[1], c[2]) for c in SLICES], ids=[c[0] for c in SLICES])
def test_accepted_slice_values_are_accepted_by_systemd(build: Any, path: str, tmp_path: Path) -> None:
    text = render_any(build())[path]
    assert _verify_slice(tmp_path, path.rsplit("/", 1)[1], text) == [], text


# What the specs refuse because systemd 252 ignores it: the same directive in a unit makes
# systemd-analyze log "ignoring", so the slice would have run with no limit at all.
IGNORED_BY_SYSTEMD = [
    ("memory_max", 0, "MemoryMax=0"),
    ("memory_high", "0", "MemoryHigh=0"),
    ("memory_max", "0%", "MemoryMax=0%"),
    ("memory_max", 2**64 - 1, "MemoryMax=18446744073709551615"),
    ("memory_max", "16777216T", "MemoryMax=16777216T"),
    ("memory_max", "101%", "MemoryMax=101%"),
    ("memory_low", "1.234%", "MemoryLow=1.234%"),
    ("cpu_weight", "IDLE", "CPUWeight=IDLE"),
    ("tasks_max", 0, "TasksMax=0"),
]


@pytest.mark.parametrize(("field", "value", "directive"), IGNORED_BY_SYSTEMD, ids=[c[2] for c in IGNORED_BY_SYSTEMD])
def test_refused_values_are_the_ones_systemd_ignores(field: str, value: object, directive: str,
                                                    tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=field):
        SliceSpec("web.slice", **{field: value})  # type: ignore[arg-type]
    complaints = _verify_slice(tmp_path, "web.slice", f"[Slice]\n{directive}\n")
    assert any("ignoring" in c for c in complaints), complaints


@pytest.mark.parametrize(("build", "path"), [(c[1], c[2]) for c in PROFILES], ids=[c[0] for c in PROFILES])
def test_accepted_profiles_compile(build: Any, path: str, tmp_path: Path) -> None:
    f = tmp_path / "profile"
    f.write_text(render_any(build())[path])
    res = subprocess.run(["apparmor_parser", "-Q", "-K", str(f)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize(("rule", "why"), [
    ("/tmp/x wa,", "Conflict 'a' and 'w'"),
    ("/tmp/x rx,", "exec qualifier"),
    ("deny /tmp/x Px,", "in deny rules"),
])
def test_raw_profile_permissions_go_through_apparmor_parser(rule: str, why: str) -> None:
    with pytest.raises(SpecError) as err:
        AppArmorProfileSpec("p", raw=f"profile p {{\n  {rule}\n}}\n")
    assert "a profile apparmor_parser -Q -K compiles" in str(err.value) and why in str(err.value)


def test_bpftrace_parser_that_hangs_becomes_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec refuses #include; the parser call itself is bounded too (a FIFO never opens)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    monkeypatch.setattr(ebpf_spec, "PARSE_TIMEOUT_S", 1)
    err = ebpf_spec.bpftrace_parse_error(f'#include "{fifo}"\nBEGIN {{ exit(); }}\n')
    assert err == "bpftrace -d did not finish within 1 s"
