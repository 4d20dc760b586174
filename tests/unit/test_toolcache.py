"""ringzero.toolcache: an answer is asked once per tool, question and what the tool reads."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ringzero import toolcache


@pytest.fixture
def tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RINGZERO_CACHE", str(tmp_path / "cache"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "rz-tool"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return exe


def _asker(answer: str | None) -> tuple[list[str], Callable[[], str | None]]:
    asked: list[str] = []

    def ask() -> str | None:
        asked.append("asked")
        return answer

    return asked, ask


def test_an_answer_is_asked_once_then_remembered(tool: Path) -> None:
    asked, ask = _asker("line 3: syntax error")
    for _ in range(3):
        assert toolcache.remembered("rz-tool", "profile text", ask) == "line 3: syntax error"
    assert asked == ["asked"]
    none_asked, none = _asker(None)  # "no objection" is an answer too
    assert toolcache.remembered("rz-tool", "other text", none) is None
    assert toolcache.remembered("rz-tool", "other text", none) is None
    assert none_asked == ["asked"]


def test_another_question_tool_or_read_file_is_asked_again(tool: Path, tmp_path: Path) -> None:
    include = tmp_path / "abstractions"
    include.mkdir()
    (include / "base").write_text("a")
    asked, ask = _asker("ok")
    toolcache.remembered("rz-tool", "q", ask, reads=[include])
    toolcache.remembered("rz-tool", "q2", ask, reads=[include])
    assert len(asked) == 2
    (include / "base").write_text("changed")  # an include the tool reads changed, seen by the next run
    toolcache.forget_fingerprints()
    toolcache.remembered("rz-tool", "q", ask, reads=[include])
    assert len(asked) == 3
    tool.write_text("#!/bin/sh\n# upgraded\n")  # another build of the tool
    toolcache.forget_fingerprints()
    toolcache.remembered("rz-tool", "q", ask, reads=[include])
    assert len(asked) == 4
    toolcache.remembered("rz-tool", "q", ask, reads=[include])
    assert len(asked) == 4


def test_no_answer_is_not_remembered(tool: Path) -> None:
    calls: list[int] = []

    def fails() -> str | None:
        calls.append(1)
        raise TimeoutError("did not finish")

    for _ in range(2):
        with pytest.raises(TimeoutError):
            toolcache.remembered("rz-tool", "q", fails)
    assert len(calls) == 2


def test_a_damaged_or_unwritable_cache_only_means_asking(tool: Path, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    asked, ask = _asker("ok")
    toolcache.remembered("rz-tool", "q", ask)
    for f in (toolcache.cache_dir() / "rz-tool").iterdir():
        f.write_text("{not json")
    assert toolcache.remembered("rz-tool", "q", ask) == "ok"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory would be")
    monkeypatch.setenv("RINGZERO_CACHE", str(blocked))
    assert toolcache.remembered("rz-tool", "q", ask) == "ok"
    assert len(asked) == 3
