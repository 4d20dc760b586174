"""What deterministic local tools answered, remembered across program runs.

Each `pulumi preview` and `pulumi up` runs the program, and the program asks the same tools
the same questions every time: apparmor_parser whether each declared profile compiles,
systemd-analyze what each service scores. Those answers refuse bad input at preview, so
they are kept exactly, only not asked for again: an answer is stored under
`~/.cache/ringzero/answers/` (`$RINGZERO_CACHE`), keyed by the question, by the tool
(path, size, mtime and inode: an upgraded tool is asked again), by the running kernel, and
by every file the caller says the tool also reads (the same stat of each; a directory
stands for every file under it). A missing, unreadable or unwritable cache only means the
tool runs.

Example::

    verdict = remembered("apparmor_parser", profile_text, lambda: compile_it(profile_text),
                         reads=[Path("/etc/apparmor.d/abstractions")])
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from . import paths

FORMAT = 1  # bump when what a key covers changes


def cache_dir() -> Path:
    return paths.cache_dir() / "answers"


def _stat_line(path: Path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:absent"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def _files_under(path: Path) -> Iterable[Path]:
    if not path.is_dir():
        yield path
        return
    yield path  # a file removed or added changes the directory's own mtime
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            yield Path(root) / name


def fingerprint(tool: str, reads: Sequence[Path] = ()) -> str:
    """The tool (found on PATH), the kernel and every file in `reads`, as stat lines (taken
    once per process: a program run asks about several profiles against the same includes)."""
    return _fingerprint(tool, os.environ.get("PATH", ""), tuple(reads))


@functools.cache
def _fingerprint(tool: str, _path_env: str, reads: tuple[Path, ...]) -> str:
    exe = shutil.which(tool)
    lines = [f"format:{FORMAT}", f"kernel:{os.uname().release}", _stat_line(Path(exe)) if exe else f"{tool}:absent"]
    lines += [_stat_line(p) for r in reads for p in _files_under(r)]
    return "\n".join(lines)


def forget_fingerprints() -> None:
    """Take the stat lines again (a new program run does; tests that change a tool call this)."""
    _fingerprint.cache_clear()


def remembered(tool: str, question: str, ask: Callable[[], str | None], *, reads: Sequence[Path] = ()) -> str | None:
    """`ask()`'s answer to `question`, from the cache when this tool (and what it reads) gave it
    before; else asked, and stored."""
    key = hashlib.sha256(f"{fingerprint(tool, reads)}\n--\n{question}".encode()).hexdigest()
    path = cache_dir() / tool / f"{key}.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        kept = json.loads(path.read_text())
        answer = kept["answer"]
        if answer is None or isinstance(answer, str):
            return answer
    answer = ask()  # an exception (the tool did not answer) propagates, and nothing is stored
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".answer-", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump({"tool": tool, "answer": answer}, f)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return answer
