"""A long-lived development guest: boots the project's image by hand and keeps it running
until interrupted, so that guest tests can be tried against it without a boot each time.

    .venv/bin/python -m tests.devguest /tmp/rz-dev 2290 &     # READY appears in the dir
    RINGZERO_DEV_GUEST=/tmp/rz-dev .venv/bin/pytest tests/kernel/test_isolation.py

Not used by `make test`: every tier boots its own guests.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

from tests.handboot import hand_booted


def main() -> None:
    workdir, port = Path(sys.argv[1]), int(sys.argv[2])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with hand_booted("rz-dev", port, workdir) as guest:
        (workdir / "guest.json").write_text(json.dumps(
            {"name": guest.name, "port": guest.port, "known_hosts_line": guest.known_hosts_line}))
        (workdir / "READY").write_text(guest.url + "\n")
        print(f"dev guest up: {guest.url} (key {guest.key_file}); boot {guest.boot_s:.0f} s", flush=True)
        stop.wait()
    (workdir / "READY").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
