"""The CLI as people expect it: --version, python -m ringzero, completion, colour rules,
a live progress display that stays on the terminal for 500 hosts, and Ctrl-C."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ringzero.checks.progress import Progress, use_colour
from ringzero.cli import main

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_version_from_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"ringzero {version('ringzero')}"


def test_python_dash_m_and_the_console_script() -> None:
    res = subprocess.run([sys.executable, "-m", "ringzero", "--help"], capture_output=True, text=True, cwd="/")
    assert res.returncode == 0 and res.stdout.startswith("usage: ringzero"), res.stderr
    for sub in ("check", "manifest", "render", "completion"):
        assert sub in res.stdout
    # `make setup` puts the command in the venv (an editable install of the checkout)
    res = subprocess.run([str(VENV_BIN / "ringzero"), "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("ringzero "), res.stderr


def _complete(words: list[str]) -> list[str]:
    script = subprocess.run([str(VENV_BIN / "ringzero"), "completion", "bash"], capture_output=True, text=True,
                            check=True).stdout
    quoted = " ".join(f"'{w}'" for w in words)
    prog = (f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _ringzero; "
            'printf "%s\\n" "${COMPREPLY[@]}"')
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    res = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=env, check=True)
    return [w for w in res.stdout.splitlines() if w]


def test_bash_completion_of_subcommands_options_and_values() -> None:
    assert _complete(["ringzero", "ch"]) == ["check"]
    assert "--version" in _complete(["ringzero", "--"])
    assert _complete(["ringzero", "check", "--base"]) == ["--baseline"]
    assert set(_complete(["ringzero", "check", "--baseline", ""])) >= {"isolation", "isolation-hypervisor"}
    assert _complete(["ringzero", "completion", ""]) == ["bash", "zsh"]
    assert _complete(["ringzero", "check", "--junit", ""]) == []  # file names, by the shell's default


def test_zsh_completion_reuses_the_bash_function(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "zsh"]) == 0
    out = capsys.readouterr().out
    assert "bashcompinit" in out and "complete -o default -F _ringzero ringzero" in out


@pytest.mark.parametrize(("env", "tty", "expected"), [
    ({}, True, True),
    ({}, False, False),
    ({"NO_COLOR": "1"}, True, False),
    ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),
    ({"FORCE_COLOR": "1"}, False, True),
    ({"FORCE_COLOR": "0"}, False, False),
    ({"TERM": "dumb"}, True, False),
])
def test_colour_rules(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tty: bool, expected: bool) -> None:
    for k in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert use_colour(FakeTty() if tty else io.StringIO()) is expected


def _check_local(env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([str(VENV_BIN / "ringzero"), "check", "--hosts", "local://", "--baseline", "isolation"],
                          capture_output=True, text=True, env={**base, **env}, cwd=tmp, timeout=120)


def test_no_colour_off_a_terminal_or_with_no_color(tmp_path: Path) -> None:
    plain = _check_local({}, tmp_path)
    assert plain.returncode in (0, 1), plain.stderr
    assert "\x1b[" not in plain.stdout + plain.stderr  # a pipe: no escape codes at all
    assert plain.stderr.count("\n") == 1  # not a terminal: one line per machine, when it is done
    forced = _check_local({"FORCE_COLOR": "1"}, tmp_path)
    assert "\x1b[" in forced.stdout
    assert "\x1b[" not in _check_local({"FORCE_COLOR": "1", "NO_COLOR": "1"}, tmp_path).stdout


class Screen:
    """Enough of a VT100 to replay Progress's output: which rows it wrote, what they show."""

    def __init__(self) -> None:
        self.rows: dict[int, str] = {}
        self.row = self.col = 0
        self.max_row = 0

    def feed(self, data: str) -> None:
        for m in re.finditer(r"\x1b\[(\d*)([A-Za-z])|\n|[^\x1b\n]+", data):
            tok = m.group(0)
            if tok == "\n":
                self.row += 1
                self.col = 0
            elif m.group(2):
                n, op = int(m.group(1) or 1), m.group(2)
                if op == "F":
                    self.row -= n
                    self.col = 0
                elif op == "E":
                    self.row += n
                    self.col = 0
                elif op == "K":
                    self.rows[self.row] = ""
                elif op == "m":
                    continue
                else:
                    raise AssertionError(f"unexpected escape {tok!r}")
            else:
                line = self.rows.get(self.row, "")
                self.rows[self.row] = line[: self.col] + tok
                self.col += len(tok)
            assert self.row >= 0, "moved above the display"
            self.max_row = max(self.max_row, self.row)


def _fleet_events(names: list[str]) -> list[tuple[str, str, str]]:
    """What 8 workers report for a fleet: start, read, check, done; interleaved."""
    events: list[tuple[str, str, str]] = []
    for start in range(0, len(names), 8):
        batch = names[start:start + 8]
        for step in ("connecting to ssh://root@10.0.0.1:22", "reading 40 values", "checking 20/40"):
            events += [(n, step, "running") for n in batch]
        events += [(n, "done: 38 pass, 2 fail (3.1 s)", "fail" if i % 3 == 0 else "pass")
                   for i, n in enumerate(batch)]
    return events


def test_progress_for_500_hosts_stays_within_the_terminal_and_writes_only_changes() -> None:
    names = [f"host{i:03d}.example.com" for i in range(500)]
    cols, rows = 100, 30
    tty = FakeTty()
    p = Progress(names, stream=tty, size=(cols, rows), colour=True)
    events = _fleet_events(names)
    screen = Screen()
    sizes = []
    for name, text, status in events:
        before = tty.tell()
        if status == "running":
            p.set(name, text)
        else:
            p.finish(name, text, status)
        chunk = tty.getvalue()[before:]
        sizes.append(len(chunk))
        screen.feed(chunk)
    # the display never grows past the terminal: a summary and rows-2 host lines, cursor below
    assert screen.max_row <= rows - 1
    assert all(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) < cols for line in screen.rows.values())
    assert re.sub(r"\x1b\[[0-9;]*m", "", screen.rows[0]).startswith("ringzero check: 500/500 done, 0 running")
    # O(changes): after the first frame, an event rewrites its host line and the summary line
    per_event = 2 * (cols + 40)
    assert max(sizes[1:]) <= per_event
    assert sum(sizes) <= sizes[0] + per_event * (len(events) - 1)
    assert sum(sizes) < 200 * len(events)  # redrawing every host line would be ~500 lines per event

    plain = io.StringIO()
    q = Progress(names, stream=plain)
    for name, text, status in events:
        q.set(name, text) if status == "running" else q.finish(name, text, status)
    lines = plain.getvalue().splitlines()
    assert len(lines) == 500 and all("done:" in ln for ln in lines)  # one per host completion
    assert "\x1b" not in plain.getvalue()


def test_progress_on_a_short_terminal_and_a_tiny_fleet() -> None:
    tty = FakeTty()
    p = Progress(["vm1", "db"], stream=tty, size=(80, 24), colour=False)
    p.set("vm1", "connecting")
    p.set("db", "reading 14 values")
    p.finish("vm1", "done: 11 pass", "pass")
    screen = Screen()
    screen.feed(tty.getvalue())
    assert [screen.rows[i] for i in range(3)] == [
        "ringzero check: 1/2 done, 1 running, 1 pass", "vm1  done: 11 pass", "db   reading 14 values"]
    tiny = FakeTty()
    q = Progress([f"h{i}" for i in range(10)], stream=tiny, size=(80, 2), colour=False)
    for i in range(10):
        q.finish(f"h{i}", "done", "pass")
    screen = Screen()
    screen.feed(tiny.getvalue())
    assert screen.max_row <= 1  # only the summary line fits


def _ssh_processes(marker: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [ln for ln in ps.splitlines() if marker in ln and "ssh" in ln]


def test_ctrl_c_exits_130_with_connections_closed_and_reports_written(tmp_path: Path) -> None:
    """A machine whose SSH port accepts and never answers keeps `ringzero check` busy; SIGINT
    ends it: exit 130, JUnit/SARIF/HTML with the finished machine and the other one not run,
    no ssh (nor ControlMaster) of the run left behind."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    hung = f"ssh://root@127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(VENV_BIN / "ringzero"), "check", "--hosts", f"me=local://,hung={hung}", "--baseline", "isolation",
         "--junit", "r.xml", "--sarif", "r.sarif", "--html", "r.html", "--timeout", "120"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        listener.settimeout(60)
        _conn, _ = listener.accept()  # ssh is connected and waits for a banner that never comes
        deadline = time.monotonic() + 30
        while not _ssh_processes(f"Port={port}") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _ssh_processes(f"Port={port}"), "no ssh process to interrupt"
        time.sleep(1.5)  # local:// is done by now
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    assert proc.returncode == 130, out + err
    assert time.monotonic() - t0 < 15
    assert "Traceback" not in err
    assert "interrupted: 1 of 2 machine(s) checked" in err
    cases = ET.parse(tmp_path / "r.xml").getroot().iter("testcase")
    by_host: dict[str, list[ET.Element]] = {}
    for c in cases:
        by_host.setdefault("hung" if "hung" in (c.get("classname", "") + c.get("name", "")) else "me", []).append(c)
    assert by_host["me"] and by_host["hung"]
    assert all("not run: interrupted" in ET.tostring(c, encoding="unicode") for c in by_host["hung"])
    assert not any("not run" in ET.tostring(c, encoding="unicode") for c in by_host["me"])
    assert (tmp_path / "r.sarif").is_file() and (tmp_path / "r.html").is_file()
    time.sleep(0.5)
    assert not _ssh_processes(f"Port={port}"), "an ssh of the interrupted run is still running"
    assert not _ssh_processes("rz-check-") or all(f"{port}" not in ln for ln in _ssh_processes("rz-check-"))
