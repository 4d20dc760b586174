"""ringzero's SSH settings layered on the user's SSH config, as ssh itself resolves them
(`ssh -G` prints the configuration ssh would use for a host, without connecting)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ringzero.checks.hosts import Endpoint
from ringzero.checks.run import SshOptions, connect, ssh_config_file, user_ssh_configs

USER_CONFIG = """\
Host db.internal
  HostName 10.9.0.5
  User alice
  ProxyJump ops@bastion.example:2200
  CertificateFile ~/.ssh/id_ed25519-cert.pub
  StrictHostKeyChecking no
  BatchMode no
  ConnectTimeout 99
Host *
  ServerAliveCountMax 9
  UserKnownHostsFile ~/.ssh/known_hosts_team
"""


def resolved(config: str, host: str, *args: str) -> dict[str, str]:
    """What ssh makes of `host` with `config` (`ssh -G`): option -> value (lower case keys)."""
    out = subprocess.run(["ssh", "-G", "-F", config, *args, host], capture_output=True, text=True, check=True).stdout
    pairs = (line.split(" ", 1) for line in out.splitlines() if " " in line)
    return {k: v for k, v in pairs}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir(mode=0o700)
    cfg = tmp_path / ".ssh" / "config"
    cfg.write_text(USER_CONFIG)
    cfg.chmod(0o600)
    return tmp_path


def test_ringzero_settings_win_the_users_fill_in_the_rest(home: Path, tmp_path: Path) -> None:
    cfg = ssh_config_file(tmp_path, SshOptions(known_hosts=str(tmp_path / "kh"), timeout_s=12))
    got = resolved(cfg, "db.internal")
    # the user's per-host settings: the bastion, the address, the login, the certificate
    assert got["hostname"] == "10.9.0.5" and got["user"] == "alice"
    assert got["proxyjump"] == "ops@bastion.example:2200"
    assert got["certificatefile"] == "~/.ssh/id_ed25519-cert.pub"
    assert got["serveralivecountmax"] == "3"  # ringzero's bound on a dead link, not the user's 9
    # ringzero's must-haves hold although the user's config says otherwise for this host
    assert got["batchmode"] == "yes" and got["stricthostkeychecking"] == "true"
    assert got["connecttimeout"] == "12"
    assert got["userknownhostsfile"] == str((tmp_path / "kh").resolve())
    assert got["globalknownhostsfile"] == "/dev/null"


def test_own_known_hosts_unless_pinned(home: Path, tmp_path: Path) -> None:
    got = resolved(ssh_config_file(tmp_path, SshOptions()), "db.internal")
    # the user's own (ssh expands ~ from the password database), host keys still checked
    assert got["userknownhostsfile"].endswith("/.ssh/known_hosts_team")
    assert got["stricthostkeychecking"] == "true"


def test_another_config_or_none(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "fleet_ssh_config"
    other.write_text("Host db.internal\n  ProxyJump jump2\n")
    got = resolved(ssh_config_file(tmp_path, SshOptions(config=str(other))), "db.internal")
    assert got["proxyjump"] == "jump2" and "hostname" in got and got["hostname"] == "db.internal"
    assert user_ssh_configs(str(other)) == [str(other.resolve())]  # as `ssh -F FILE`: that file alone
    got = resolved(ssh_config_file(tmp_path, SshOptions(config="none")), "db.internal")
    assert "proxyjump" not in got and got["batchmode"] == "yes"
    with pytest.raises(ValueError, match="--ssh-config /nope: no such file"):
        user_ssh_configs("/nope")


def test_default_is_what_plain_ssh_reads(home: Path) -> None:
    expected = [str(home / ".ssh" / "config")]
    if Path("/etc/ssh/ssh_config").is_file():
        expected.append("/etc/ssh/ssh_config")
    assert user_ssh_configs(None) == expected
    (home / ".ssh" / "config").unlink()
    assert user_ssh_configs(None) == expected[1:]


def test_the_connection_carries_the_layered_config(home: Path, tmp_path: Path) -> None:
    """testinfra's ssh command uses the layered file (never the bare -F that dropped the user's
    config), one ControlMaster, and an endpoint's own ssh arguments."""
    cfg = ssh_config_file(tmp_path, SshOptions())
    e = Endpoint("db", "ssh://alice@db.internal", ssh_args=("-o", "ProxyJump=j1,j2"))
    cmd, args = connect(e, SshOptions(), cfg, str(tmp_path / "cm")).backend._build_ssh_command("true")
    line = " ".join(cmd) % tuple(args)
    assert f"-F {cfg}" in line and "-o ProxyJump=j1,j2" in line
    assert "ControlMaster=auto" in line and f"ControlPath={tmp_path / 'cm'}" in line
    assert Path(cfg).stat().st_mode & 0o777 == 0o600
    assert Path(cfg).read_text().index("BatchMode yes") < Path(cfg).read_text().index("Include")


def test_a_master_only_for_machines_that_may_probe_actively(home: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Baseline controls only read, in one batched command: their machines get a plain `ssh` (no
    ControlMaster to fork and end with `ssh -O exit`); declared checks, which may run active
    probes over the same connection, get a master."""
    import datetime as dt

    import ringzero.checks.run as run
    from ringzero.checks import expectations
    from ringzero.checks.baseline import baseline_checks, load_catalogue
    from ringzero.checks.progress import Progress
    from tests.fixtures import local_topology

    cfg = ssh_config_file(tmp_path, SshOptions())
    e = Endpoint("db", "ssh://root@db.internal:22")
    cmd, args = connect(e, SshOptions(), cfg, str(tmp_path / "cm"), master=False).backend._build_ssh_command("true")
    line = " ".join(cmd) % tuple(args)
    assert f"-F {cfg}" in line and "Control" not in line

    asked: list[bool] = []

    def fake_connect(e: Endpoint, ssh: SshOptions, cfg: str, controlpath: str, master: bool = True) -> None:
        asked.append(master)
        raise RuntimeError("no network in the unit tier")

    monkeypatch.setattr(run, "connect", fake_connect)
    baseline = baseline_checks("db", load_catalogue().baseline("isolation"), {"nested": "off"})
    declared = expectations(local_topology(), {"vm1"})
    for checks in (baseline, declared + baseline):
        m = run.check_machine(e, checks, SshOptions(), Progress(["db"], quiet=True), tmp_path, cfg, [],
                              dt.date.today())
        assert m.error and all(o.status == "error" for o in m.outcomes)
    assert asked == [False, True]
