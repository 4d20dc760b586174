"""The key-file helper: private directories of a live pid, secrets never through a link."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ringzero import keyfiles


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_secret_is_0600_and_a_symlink_at_its_path_is_refused(tmp_path: Path) -> None:
    key = keyfiles.write_secret(tmp_path / "key", "SECRET\n")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_text() == "SECRET\n"
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OSError):  # O_NOFOLLOW|O_EXCL: neither followed nor truncated
        keyfiles.write_secret(tmp_path / "link", "SECRET")
    assert target.read_text() == "untouched"
    with pytest.raises(FileExistsError):  # never reuses an existing file
        keyfiles.write_secret(key, "other")


def test_private_dir_check_refuses_symlinks_and_open_modes(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    keyfiles.check_private_dir(real)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(keyfiles.UnsafePathError, match="not a directory of ours"):
        keyfiles.check_private_dir(tmp_path / "link")
    real.chmod(0o755)
    with pytest.raises(keyfiles.UnsafePathError, match="mode 0755"):
        keyfiles.check_private_dir(real)


def test_private_tempdir_is_0700_named_with_its_owner_and_removed(tmp_path: Path) -> None:
    with keyfiles.private_tempdir("rz-test-", tmp_path) as d:
        assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700
        assert d.name.startswith(f"rz-test-{os.getpid()}.")
        keyfiles.write_key(d / "key", "K")
    assert not d.exists()


def test_stale_dir_of_a_dead_pid_is_removed_a_live_one_kept(tmp_path: Path) -> None:
    dead = tmp_path / f"rz-test-{_dead_pid()}.123-abcd"
    live = tmp_path / f"rz-test-{keyfiles.owner_token()}-efgh"
    reused = tmp_path / f"rz-test-{os.getpid()}.1-ijkl"  # our pid, another start time: a reused pid
    for d in (dead, live, reused):
        d.mkdir(mode=0o700)
        (d / "key").write_text("K")
    with keyfiles.private_tempdir("rz-test-", tmp_path) as d:
        assert not dead.exists() and not reused.exists()
        assert live.exists() and d.exists()
    assert live.exists()


def test_unowned_dir_of_an_earlier_version_is_removed_only_when_a_day_old(tmp_path: Path) -> None:
    old, recent = tmp_path / "rz-test-ab12cd_9", tmp_path / "rz-test-zz34yy_8"
    for d in (old, recent):
        d.mkdir(mode=0o700)
        (d / "key").write_text("K")
    day_ago = time.time() - keyfiles.LEGACY_STALE_S - 60
    os.utime(old, (day_ago, day_ago))
    assert keyfiles.remove_stale(tmp_path, "rz-test-") == [old]
    assert recent.exists()


def test_run_dir_is_claimed_fresh_and_a_dead_owners_dir_replaced(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "proj-stack"
    path.mkdir(parents=True)
    (path / "owner").write_text(f"{_dead_pid()}.1")
    (path / "access").write_text("OLD KEY")
    other = tmp_path / "keys" / "other-stack"  # another stack's leftover from a killed run
    other.mkdir()
    (other / "owner").write_text(f"{_dead_pid()}.1")
    assert keyfiles.claim_run_dir(path) == path
    assert not (path / "access").exists() and not other.exists()
    assert (path / "owner").read_text() == keyfiles.owner_token()
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700
    assert keyfiles.claim_run_dir(path) == path  # the same process again: kept
    keyfiles.replace_secret(path / "access", "KEY 1")
    keyfiles.replace_secret(path / "access", "KEY 2")
    assert (path / "access").read_text() == "KEY 2"
    keyfiles.release_run_dir(path)
    assert not path.exists()


def test_run_dir_of_a_live_other_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "proj-stack"
    path.mkdir(parents=True)
    (path / "owner").write_text(keyfiles.owner_token(os.getppid()))
    with pytest.raises(keyfiles.UnsafePathError, match=f"pid {os.getppid()}"):
        keyfiles.claim_run_dir(path, wait_s=0.3)


def test_run_dir_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.mkdir()
    (target / "keep").write_text("keep")
    (tmp_path / "keys").mkdir(mode=0o700)
    (tmp_path / "keys" / "proj-stack").symlink_to(target)
    path = keyfiles.claim_run_dir(tmp_path / "keys" / "proj-stack")
    assert not path.is_symlink() and (target / "keep").read_text() == "keep"
    keyfiles.release_run_dir(path)


def test_a_killed_owner_s_run_dir_is_removed_by_its_watcher(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "proj-stack"
    code = ("import sys, time; from pathlib import Path; from ringzero import keyfiles; "
            "keyfiles.claim_run_dir(Path(sys.argv[1])); print('ok', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ok"
    assert path.is_dir()
    proc.kill()  # SIGKILL: no atexit
    proc.wait()
    deadline = time.monotonic() + 10
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not path.exists()


def test_safe_env_drops_pulumi_and_secret_looking_variables() -> None:
    env = {"PATH": "/bin", "HOME": "/root", "PULUMI_CONFIG_PASSPHRASE": "p", "PULUMI_CONFIG_PASSPHRASE_FILE": "/f",
           "PULUMI_ACCESS_TOKEN": "t", "GITHUB_TOKEN": "g", "AWS_SECRET_ACCESS_KEY": "a", "DB_PASSWORD": "d",
           "SSH_AUTH_SOCK": "/s", "ANSIBLE_PIPELINING": "True", "TOKENIZER_PATH": "/tok"}
    assert keyfiles.safe_env(env) == {"PATH": "/bin", "HOME": "/root", "SSH_AUTH_SOCK": "/s",
                                      "ANSIBLE_PIPELINING": "True", "TOKENIZER_PATH": "/tok"}
