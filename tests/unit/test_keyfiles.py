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


def test_key_dirs_of_earlier_versions_are_swept_when_their_owner_is_gone(tmp_path: Path) -> None:
    """What a killed run of a version that still wrote the provider's key file left is removed;
    a directory whose owner still runs, a symlink and a file are left alone."""
    keys = tmp_path / "keys"
    dead = keys / "proj-stack"
    dead.mkdir(parents=True)
    (dead / "owner").write_text(f"{_dead_pid()}.1")
    (dead / "access").write_text("OLD KEY")
    staging = keys / f".proj-stack.{_dead_pid()}.1-abcd"  # a claim cut before its rename
    staging.mkdir()
    live = keys / "other-stack"
    live.mkdir()
    (live / "owner").write_text(keyfiles.owner_token(os.getppid()))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "owner").write_text(f"{_dead_pid()}.1")
    (keys / "linked").symlink_to(victim)
    assert sorted(keyfiles.sweep_run_dirs(keys)) == sorted([dead, staging])
    assert live.is_dir() and (victim / "owner").exists() and (keys / "linked").is_symlink()
    assert keyfiles.sweep_run_dirs(tmp_path / "absent") == []


def test_safe_env_drops_pulumi_and_secret_looking_variables() -> None:
    env = {"PATH": "/bin", "HOME": "/root", "PULUMI_CONFIG_PASSPHRASE": "p", "PULUMI_CONFIG_PASSPHRASE_FILE": "/f",
           "PULUMI_ACCESS_TOKEN": "t", "GITHUB_TOKEN": "g", "AWS_SECRET_ACCESS_KEY": "a", "DB_PASSWORD": "d",
           "SSH_AUTH_SOCK": "/s", "ANSIBLE_PIPELINING": "True", "TOKENIZER_PATH": "/tok"}
    assert keyfiles.safe_env(env) == {"PATH": "/bin", "HOME": "/root", "SSH_AUTH_SOCK": "/s",
                                      "ANSIBLE_PIPELINING": "True", "TOKENIZER_PATH": "/tok"}
