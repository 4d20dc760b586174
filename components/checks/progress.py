"""`ringzero check`'s live progress on stderr, and when to colour it.

On a terminal: one summary line and as many host lines as fit, redrawn in place, and only
the lines that changed (an event costs a line or two, whatever the fleet's size). Elsewhere
(a pipe, a CI log): one plain line per machine when it is done. Example::

    progress = Progress(["vm1", "vm2"])
    progress.set("vm1", "connecting to ssh://root@10.0.0.5:22")
    progress.finish("vm1", "done: 40 pass (3.1 s)", "pass")
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from dataclasses import dataclass
from typing import IO

# status -> SGR colour
_COLOURS = {"pass": "32", "fail": "31", "error": "1;31", "waived": "33", "running": "36", "interrupted": "33"}


def use_colour(stream: IO[str]) -> bool:
    """Colour only on a terminal, never with NO_COLOR set (https://no-color.org), always with
    FORCE_COLOR set (other than 0), never on TERM=dumb."""
    if os.environ.get("NO_COLOR"):
        return False
    force = os.environ.get("FORCE_COLOR")
    if force is not None and force not in ("", "0"):
        return True
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM") != "dumb"


def paint(text: str, status: str, colour: bool) -> str:
    code = _COLOURS.get(status)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


@dataclass
class _Host:
    text: str = "waiting"
    status: str = "waiting"  # waiting, running, or a final one: pass, fail, error, interrupted
    tick: int = 0  # when it last changed

    @property
    def final(self) -> bool:
        return self.status not in ("waiting", "running")


class Progress:
    """Live progress of many machines; `set` while running, `finish` once per machine."""

    def __init__(self, names: list[str], stream: IO[str] | None = None, quiet: bool = False,
                 size: tuple[int, int] | None = None, colour: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.names = names
        self.quiet = quiet
        try:
            self.tty = not quiet and self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.colour = use_colour(self.stream) if colour is None else colour
        cols, rows = size or shutil.get_terminal_size((100, 24))
        self.cols = max(20, cols)
        # the summary line, then host lines; one row left for the cursor (and the shell prompt)
        self.slots: list[str | None] = [None] * max(0, min(len(names), rows - 2))
        self.hosts = {n: _Host() for n in names}
        self.width = min(max((len(n) for n in names), default=0), self.cols // 3)
        self.drawn: list[str] = []  # the lines on screen now (summary first), as written
        self.tick = 0
        self.lock = threading.Lock()
        self.stopped = False  # after Ctrl-C: what the dying connections report is not shown

    def interrupt(self) -> None:
        """Ctrl-C: from now on only `finish(..., "interrupted")` changes the display."""
        with self.lock:
            self.stopped = True

    def set(self, name: str, text: str) -> None:
        """`name` is at `text` (connecting, reading, checking 5/40, ...)."""
        self._update(name, text, "running")

    def finish(self, name: str, text: str, status: str) -> None:
        """`name` is done: `status` is pass, fail, error or interrupted (it picks the colour)."""
        self._update(name, text, status)

    def _update(self, name: str, text: str, status: str) -> None:
        with self.lock:
            if self.stopped and status != "interrupted":
                return
            self.tick += 1
            self.hosts[name] = _Host(text, status, self.tick)
            if self.quiet:
                return
            if not self.tty:
                if status != "running":
                    self.stream.write(f"{name:<{self.width}}  {paint(text, status, self.colour)}\n")
                    self.stream.flush()
                return
            self._place(name)
            self._draw()

    def summary(self) -> str:
        """The first line: how many are done, running, and how they ended."""
        done = [h for h in self.hosts.values() if h.final]
        counts = {s: sum(h.status == s for h in done) for s in ("pass", "fail", "error", "interrupted")}
        running = sum(h.status == "running" for h in self.hosts.values())
        head = f"ringzero check: {len(done)}/{len(self.hosts)} done, {running} running"
        tail = [(f"{n} {s}", s) for s, n in counts.items() if n]
        if len(head) + sum(len(t) + 2 for t, _ in tail) > self.cols - 1:
            return (head + "".join(f", {t}" for t, _ in tail))[: self.cols - 1]
        return head + "".join(f", {paint(t, s, self.colour)}" for t, s in tail)

    def _place(self, name: str) -> None:
        """Give `name` a host line: its own, else a free one, else the one of the machine done
        longest ago, else of the one quiet longest."""
        if name in self.slots or not self.slots:
            return
        free = [i for i, n in enumerate(self.slots) if n is None]
        if free:
            self.slots[free[0]] = name
            return
        ranked = sorted(range(len(self.slots)), key=lambda i: (not self._host(i).final, self._host(i).tick))
        self.slots[ranked[0]] = name

    def _host(self, slot: int) -> _Host:
        name = self.slots[slot]
        return self.hosts[name] if name is not None else _Host()

    def _line(self, slot: int) -> str:
        name = self.slots[slot]
        if name is None:
            return ""
        h = self.hosts[name]
        text = f"{name[:self.width]:<{self.width}}  {h.text}"[: self.cols - 1]
        return paint(text, h.status, self.colour and h.final)

    def _draw(self) -> None:
        """Write the lines that differ from what is on screen; the cursor rests below them."""
        lines = [self.summary()]
        lines += [self._line(i) for i in range(len(self.slots))]
        out: list[str] = []
        n = len(self.drawn)
        for i, line in enumerate(lines):
            if i < n:
                if self.drawn[i] != line:
                    out.append(f"\x1b[{n - i}F\x1b[2K{line}\x1b[{n - i}E")
            else:
                out.append(f"\x1b[2K{line}\n")
        if out:
            self.stream.write("".join(out))
            self.stream.flush()
        self.drawn = lines

    def close(self) -> None:
        """Leave the display as it is and the cursor below it (nothing to do for plain lines)."""

