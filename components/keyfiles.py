"""Secret files on disk only while a run needs them: private directories owned by a live pid.

ssh, Ansible and virsh read a private key from a file, so ringzero writes one, but
only into a directory that this process created (0700, not a symlink, owned by us) and
that carries its owner (pid and start time). The directory goes when the run ends; one
left by a killed run (SIGKILL runs no cleanup) is removed by the next run that looks,
because its owner is dead. Example::

    with private_tempdir("ringzero-ssh-") as d:
        key = write_secret(d / "id", private_key)
        subprocess.run(["ssh", "-i", str(key), ...])
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

OWNER_FILE = "owner"  # in a run directory of versions before 2026-12-02 (see sweep_run_dirs)
# Environment variables that must not reach a child that records its environment
# (ansible-runner writes it into its artifacts): Pulumi's own, and anything secret-looking.
_SECRET_ENV = re.compile(
    r"^PULUMI_|(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?|PRIVATE_KEY|API_KEY|ACCESS_KEY)(_|$)",
    re.IGNORECASE,
)


class UnsafePathError(RuntimeError):
    """A path ringzero would put a secret in is not a private directory of ours."""


def safe_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default os.environ) without Pulumi's variables and secret-looking ones."""
    src = dict(os.environ if env is None else env)
    return {k: v for k, v in src.items() if not _SECRET_ENV.search(k)}


def proc_start_time(pid: int) -> str | None:
    """The start time of `pid` in clock ticks since boot (with the pid, names one process), or
    None when it does not run (no such process, or a zombie: it has exited)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat_line[stat_line.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 and fields[0] not in ("Z", "X") else None


def owner_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{proc_start_time(pid) or 0}"


def owner_alive(token: str) -> bool:
    """True while the process named by `token` ("<pid>.<start time>") runs."""
    pid_s, _, start = token.strip().partition(".")
    if not pid_s.isdigit():
        return False
    now = proc_start_time(int(pid_s))
    return now is not None and (start in ("", "0") or now == start)


def check_private_dir(path: Path) -> None:
    """Refuse unless `path` is a real directory (not a symlink) owned by us with no group/other access."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path}: not a directory of ours (a symlink or another file is there); refusing to "
                              "put a private key in it")
    if st.st_uid != os.geteuid():
        raise UnsafePathError(f"{path}: owned by uid {st.st_uid}, not {os.geteuid()}; refusing to put a private "
                              "key in it")
    if st.st_mode & 0o077:
        raise UnsafePathError(f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets others in; refusing to put a "
                              "private key in it")


def write_secret(path: Path, text: str) -> Path:
    """Create `path` (0600) with `text`: never follows a link, never reuses an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def write_key(path: Path, private_key: str) -> Path:
    """A private key file as ssh wants it (a final newline)."""
    return write_secret(path, private_key if private_key.endswith("\n") else private_key + "\n")


def _dir_owner(path: Path) -> str | None:
    try:
        return (path / OWNER_FILE).read_text()
    except OSError:
        return None


# Directories named before owners were recorded (`<prefix>XXXXXXXX`, tempfile's 8 random
# characters) are taken as stale once this old: no run keeps a key copy for a day.
LEGACY_STALE_S = 24 * 3600


def remove_stale(base: Path, prefix: str) -> list[Path]:
    """Remove `base/<prefix><pid>.<start>-*` directories whose owner process is gone (and
    unowned ones of earlier versions a day old); returns them."""
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    pattern = re.compile(re.escape(prefix) + r"(\d+\.\d+)-")
    legacy = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}$")
    for p in entries:
        m = pattern.match(p.name)
        if m and owner_alive(m.group(1)):
            continue
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if not m and not (legacy.match(p.name) and time.time() - st.st_mtime > LEGACY_STALE_S):
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def private_tempdir(prefix: str, base: str | Path | None = None) -> Iterator[Path]:
    """A fresh 0700 directory `<base>/<prefix><pid>.<start>-XXXX`, removed on exit.

    Stale ones of the same prefix (their pid is dead: a killed run) are removed first.
    """
    root = Path(base or tempfile.gettempdir())
    remove_stale(root, prefix)
    d = Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_token()}-", dir=root))
    try:
        check_private_dir(d)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def sweep_run_dirs(parent: Path) -> list[Path]:
    """Remove the run directories under `parent` (other stacks' too) whose owner is gone.

    Versions before 2026-12-02 kept the key of a remote libvirt host's provider in such a
    directory (`~/.cache/ringzero/keys/<project>-<stack>/`, an `owner` file naming its process)
    for each program run; the provider now has its key in its secret URI, and what a killed
    run of such a version left is removed by the next run of this one."""
    removed: list[Path] = []
    for p in sorted(parent.iterdir()) if parent.is_dir() else []:
        if p.name.startswith("."):
            m = re.match(r"\.[^/]*?\.(\d+\.\d+)-", p.name)  # a staging directory of claim_run_dir
            owner: str | None = m.group(1) if m else None
        else:
            owner = _dir_owner(p)
        if owner is None or owner_alive(owner) or os.path.islink(p) or not p.is_dir():
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed
