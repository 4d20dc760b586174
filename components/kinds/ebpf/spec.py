"""EbpfAgentSpec: a bpftrace program run as a systemd service in its own slice."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from ...spec._check import Ctx
from ..slice.spec import _SLICE_RE, SLICE_ALLOWED

RESTART = ("always", "on-failure", "no")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TOOL_RE = re.compile(r"^[a-z0-9_]{1,64}\.bt$")
# bpftrace -o truncates its output file on every start: only files in ringzero's own log
# directory, never /etc/passwd or another policy's file.
LOG_DIR = "/var/log/ringzero"
_OUTPUT_RE = re.compile(r"^/var/log/ringzero/[a-z0-9][a-z0-9_-]{0,63}(?:\.[a-z0-9_-]{1,16})?\.log$")
OUTPUT_ALLOWED = (
    "'journal', or an absolute path of a file directly in /var/log/ringzero named with a-z, 0-9, '_' and '-' "
    "(at most one inner '.'), ending in '.log', e.g. '/var/log/ringzero/execsnoop.log' (no '..', no subdirectories)"
)
# bpftrace's parser follows #include: a FIFO or a slow file would hang preview, and an included
# file is not part of the declaration. Inline programs are self-contained.
_INCLUDE_RE = re.compile(r"^[ \t]*#[ \t]*include\b", re.MULTILINE)
PARSE_TIMEOUT_S = 30


@functools.cache
def bpftrace_parse_error(program: str) -> str | None:
    """bpftrace's own parser on `program` (`bpftrace -d`, a dry run); None when it parses.

    Without bpftrace on this machine, a structural check stands in; the validate test tier
    requires bpftrace, so a rendered stack is always parsed for real there.
    """
    exe = shutil.which("bpftrace")
    if exe is None:
        depth = 0
        for ch in program:
            depth += {"{": 1, "}": -1}.get(ch, 0)
            if depth < 0:
                return "unbalanced '}'"
        return None if depth == 0 and "{" in program else "unbalanced braces or no probe body"
    with tempfile.NamedTemporaryFile("w", suffix=".bt") as f:
        f.write(program)
        f.flush()
        try:
            res = subprocess.run([exe, "-d", f.name], capture_output=True, text=True, timeout=PARSE_TIMEOUT_S,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"bpftrace -d did not finish within {PARSE_TIMEOUT_S} s"
    if res.returncode == 0:
        return None
    errors = [ln for ln in res.stderr.splitlines() if "ERROR" in ln and "RLIMIT_MEMLOCK" not in ln]
    return errors[0].replace(f.name, "<program>") if errors else res.stderr.strip()[-300:]


@dataclass(frozen=True)
class EbpfAgentSpec:
    """An always-on tracing agent. Exactly one of `program` (inline) or `tool` (packaged).

    Example::

        EbpfAgentSpec(name="execsnoop", tool="execsnoop.bt", slice="observability.slice",
                      output="/var/log/ringzero/execsnoop.log")
    """

    name: str
    program: str | None = None
    tool: str | None = None
    slice: str = "ringzero_agents.slice"
    output: str = "journal"
    restart: str = "always"
    restart_sec: int = 5

    def __post_init__(self) -> None:
        ctx = Ctx("EbpfAgent", str(self.name))
        ctx.pattern("name", self.name, _NAME_RE, "1-64 characters of a-z, 0-9, '_' and '-'")
        if (self.program is None) == (self.tool is None):
            raise ctx.fail("program", self.program, "exactly one of program (inline bpftrace) or tool")
        if self.tool is not None:
            ctx.pattern("tool", self.tool, _TOOL_RE, "a bpftrace tool file name such as 'execsnoop.bt'")
        if self.program is not None:
            if not isinstance(self.program, str) or "\x00" in self.program:
                raise ctx.fail("program", self.program, "bpftrace program text")
            inc = _INCLUDE_RE.search(self.program)
            if inc:
                line = self.program[inc.start():].split("\n", 1)[0].strip()
                raise ctx.fail("program", line, "a self-contained program: no #include (bpftrace would read "
                               "the included file at preview and on the node; use tool= for packaged programs)")
            err = bpftrace_parse_error(self.program)
            if err is not None:
                raise ctx.fail("program", self.program, f"a program bpftrace parses ({err})")
        ctx.pattern("slice", self.slice, _SLICE_RE, SLICE_ALLOWED)
        if self.output != "journal" and (
            not isinstance(self.output, str) or not _OUTPUT_RE.fullmatch(self.output) or ".." in self.output
        ):
            raise ctx.fail("output", self.output, OUTPUT_ALLOWED)
        ctx.choice("restart", self.restart, RESTART)
        ctx.int_range("restart_sec", self.restart_sec, 0, 3600)

    @property
    def unit_name(self) -> str:
        return f"ringzero-ebpf-{self.name}.service"

    @property
    def program_path(self) -> str:
        return f"/usr/sbin/{self.tool}" if self.tool else f"/etc/ringzero/ebpf/{self.name}.bt"
