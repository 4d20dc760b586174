"""`ringzero check`'s engine: checks for many machines, in parallel, one connection each.

Each machine gets the checks of its declaration (a manifest node) and/or of the baselines;
all their reads are fetched in one batch over one SSH connection (testinfra's backend, an
SSH ControlMaster for the few active probes), then every check is judged and waivers are
applied. Example::

    report = run_checks([Endpoint("vm1", "ssh://root@10.0.0.5:22")], plan_for, ssh=SshOptions(...))
    report.exit_code   # 0 all pass (or waived), 1 a check failed, 2 a machine could not be read
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .base import Check, NotApplicable
from .hosts import Endpoint
from .probe import Probe
from .progress import Progress
from .waivers import Waiver, find

STATUSES = ("pass", "fail", "waived", "error", "n/a", "skipped")


@dataclass
class Outcome:
    node: str
    check: Check
    status: str  # one of STATUSES
    message: str = ""
    waiver: Waiver | None = None  # the waiver that matched (active or expired)

    @property
    def waiver_expired(self) -> bool:
        return self.waiver is not None and self.status == "fail"


@dataclass
class MachineResult:
    endpoint: Endpoint
    outcomes: list[Outcome] = field(default_factory=list)
    error: str | None = None  # the machine could not be read at all
    seconds: float = 0.0


@dataclass
class Report:
    machines: list[MachineResult]
    baselines: list[str]
    manifest: str | None
    started: dt.datetime
    seconds: float
    today: dt.date
    waivers: list[Waiver] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C: machines not checked are `skipped` as not run

    @property
    def outcomes(self) -> list[Outcome]:
        return [o for m in self.machines for o in m.outcomes]

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def score(self) -> float:
        """Percent of judged checks that pass: waived, n/a and skipped ones are left out."""
        judged = self.count("pass") + self.count("fail") + self.count("error")
        return 100.0 * self.count("pass") / judged if judged else 100.0

    @property
    def controls(self) -> list[tuple[str, Check]]:
        """The report's columns: each control once, in first-seen order, with a check that has it."""
        seen: dict[str, Check] = {}
        for o in self.outcomes:
            seen.setdefault(o.check.control, o.check)
        return list(seen.items())

    @cached_property
    def _cells(self) -> dict[tuple[str, str], Outcome]:
        return {(o.node, o.check.control): o for o in self.outcomes}

    def cell(self, node: str, control: str) -> Outcome | None:
        """The outcome of `control` on `node` (None: not checked there)."""
        return self._cells.get((node, control))

    @property
    def expired_waivers(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.waiver_expired]

    @property
    def unused_waivers(self) -> list[Waiver]:
        used = {o.waiver.index for o in self.outcomes if o.waiver is not None}
        return [w for w in self.waivers if w.index not in used]

    @property
    def exit_code(self) -> int:
        if any(m.error for m in self.machines) or self.count("error"):
            return 2
        return 1 if self.count("fail") else 0


@dataclass(frozen=True)
class SshOptions:
    identity_file: str | None = None
    known_hosts: str | None = None  # None: the user's own known_hosts, host keys still checked
    timeout_s: int = 20
    sudo: bool = False  # logins that are not root read through `sudo` (NOPASSWD)
    # the SSH config ringzero's settings are layered on: None, as plain `ssh`, ~/.ssh/config
    # then /etc/ssh/ssh_config; a file, as `ssh -F FILE`, that file alone; "none": none at all
    config: str | None = None


SYSTEM_SSH_CONFIG = "/etc/ssh/ssh_config"


def user_ssh_configs(choice: str | None) -> list[str]:
    """The SSH config files under ringzero's settings, as ssh itself would read them: by default
    your ~/.ssh/config then the system-wide one; `ssh -F FILE` reads FILE alone; "none", none."""
    if choice == "none":
        return []
    if choice is not None:
        path = Path(choice).expanduser()
        if not path.is_file():
            raise ValueError(f"--ssh-config {choice}: no such file")
        return [str(path.resolve())]
    return [p for p in (os.path.expanduser("~/.ssh/config"), SYSTEM_SSH_CONFIG) if os.path.isfile(p)]


def ssh_config_file(tmp: Path, ssh: SshOptions) -> str:
    """An ssh_config in `tmp` for every machine: ringzero's settings (batch mode, host keys always
    checked, pinned known_hosts, time bounds), then the user's own config through `Include`
    (bastions, certificates, per-host settings). In ssh_config the first value obtained wins, so
    ringzero's come first and hold; the user's fill in everything else. The file goes to ssh with
    `-F`, and ssh hands it on to the `ssh -W` of a ProxyJump hop, so the bastion is reached under
    the same rules (its host key checked too)."""
    lines = ["# ringzero check: its own settings first (the first value obtained wins)",
             "Host *", "  BatchMode yes", "  LogLevel ERROR", f"  ConnectTimeout {ssh.timeout_s}",
             "  StrictHostKeyChecking yes",
             # a connection that stops answering ends (ssh exits 255) instead of hanging a probe:
             # the remote commands are bounded by `timeout`, this bounds the link itself
             f"  ServerAliveInterval {max(1, ssh.timeout_s // 3)}", "  ServerAliveCountMax 3"]
    if ssh.known_hosts:
        lines += [f'  UserKnownHostsFile "{Path(ssh.known_hosts).resolve()}"', "  GlobalKnownHostsFile /dev/null"]
    includes = user_ssh_configs(ssh.config)
    if includes:
        lines += ["", "# then the user's own configuration", "Match all"]
        lines += [f'  Include "{p}"' for p in includes]
    path = tmp / "ssh_config"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)  # ssh refuses a config others can write
    return str(path)


def connect(e: Endpoint, ssh: SshOptions, ssh_config: str, controlpath: str, master: bool = True) -> Any:
    """testinfra's host for `e`: this machine, or SSH through one ControlMaster at `controlpath`
    (with the endpoint's own ssh arguments, e.g. an inventory's ProxyJump). Without `master`, each
    command is a plain `ssh` of its own: for a machine whose checks make one batched read and no
    active probe, that is still one connection, without a background master to start and end."""
    import testinfra

    sudo = (ssh.sudo if e.sudo is None else e.sudo) and not e.as_root
    if e.local:
        return testinfra.get_host("local://", sudo=sudo)
    # testinfra adds ControlMaster/ControlPersist/ControlPath only when controlpersist is set
    return testinfra.get_host(e.url, ssh_config=ssh_config, ssh_identity_file=e.identity_file or ssh.identity_file,
                              controlpath=controlpath, controlpersist=60 if master else 0, timeout=ssh.timeout_s,
                              sudo=sudo, ssh_extra_args=shlex.join(e.ssh_args) if e.ssh_args else None)


def _disconnect(controlpath: str) -> None:
    """Close the machine's SSH master now rather than let it linger for ControlPersist."""
    if os.path.exists(controlpath):
        subprocess.run(["ssh", "-o", f"ControlPath={controlpath}", "-O", "exit", "ringzero"],
                       capture_output=True, timeout=10, check=False)


def _connection_error(e: Endpoint, ex: Exception) -> str:
    """What went wrong reaching `e`, in one line: ssh's own words when ssh failed (exit 255)."""
    res = ex.args[0] if ex.args and hasattr(ex.args[0], "exit_status") else None
    if res is not None:  # testinfra raises its CommandResult when ssh itself fails
        stderr = str(res.stderr)
        return f"cannot connect over SSH to {e.url}: {' '.join(stderr.split()) or f'ssh exited {res.exit_status}'}"
    msg = " ".join(str(ex).split()) or type(ex).__name__
    if "rc=255" in msg:
        return f"cannot connect over SSH to {e.url}: {msg.split(':', 2)[-1].strip() or 'ssh exited 255'}"
    return f"reading {e.url} failed: {msg}"


def judge(check: Check, probe: Probe, siblings: Mapping[str, Check],
          memo: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """(status, message) of `check` on the probed node: pass, fail, n/a, error, or skipped
    while a control it `requires` (among `siblings`, the node's checks by `control`) does not
    pass. `memo` keeps the node's verdicts by control, so a prerequisite is judged once.
    (By control, not aspect: `memory.max` is an aspect of every slice.)"""
    if check.control in memo:
        return memo[check.control]
    blocked = [r for r in check.requires if judge(siblings[r], probe, siblings, memo)[0] != "pass"]
    if blocked:
        result = ("skipped", f"skipped: requires {', '.join(blocked)}, which did not pass")
    else:
        try:
            result = ("pass", check.verify(probe) or "")
        except NotApplicable as e:
            result = ("n/a", str(e))
        except AssertionError as e:
            result = ("fail", str(e) or "the check failed")
        except Exception as e:  # a probe that could not run: the check is undecided, not failed
            result = ("error", f"{type(e).__name__}: {e}")
    memo[check.control] = result
    return result


def _waive(o: Outcome, waivers: list[Waiver], today: dt.date) -> None:
    w = find(waivers, o.check.control, o.node)
    if w is None:
        return
    o.waiver = w
    if o.status != "fail":
        return
    if w.expired(today):
        o.message += f" [waiver #{w.index} expired on {w.expires}: it no longer excuses this failure]"
    else:
        o.status = "waived"
        o.message = f"waived until {w.expires}: {w.reason} (failure: {o.message})"


def check_machine(e: Endpoint, checks: list[Check], ssh: SshOptions, progress: Progress, tmp: Path,
                  ssh_config: str, waivers: list[Waiver], today: dt.date, index: int = 0) -> MachineResult:
    controlpath = str(tmp / f"cm-{index}")
    try:
        return _check_machine(e, checks, ssh, progress, ssh_config, controlpath, waivers, today)
    finally:
        _disconnect(controlpath)


def _check_machine(e: Endpoint, checks: list[Check], ssh: SshOptions, progress: Progress, ssh_config: str,
                   controlpath: str, waivers: list[Waiver], today: dt.date) -> MachineResult:
    result = MachineResult(e)
    t0 = time.monotonic()
    reads = sorted({k for c in checks for k in c.reads})
    progress.set(e.name, f"connecting to {e.url}")
    try:
        # baseline controls only read (the catalogue's conditions are on values of the batched
        # read); declared checks may run active probes, which reuse the batched read's connection
        # through a ControlMaster. Starting and ending a master costs a fork and an `ssh -O exit`
        # per machine, several percent of a fleet's time, so only machines that may need it get one.
        master = any(c.subject != "baseline" for c in checks)
        probe = Probe(connect(e, ssh, ssh_config, controlpath, master), e.name)
        progress.set(e.name, f"reading {len(reads)} values")
        probe.fetch(reads)
    except Exception as ex:
        msg = _connection_error(e, ex)
        result.error = msg
        result.outcomes = [Outcome(e.name, c, "error", msg) for c in checks]
        result.seconds = time.monotonic() - t0
        progress.finish(e.name, f"ERROR {msg.splitlines()[0][:150]}", "error")
        return result
    siblings = {c.control: c for c in checks}
    memo: dict[str, tuple[str, str]] = {}
    for i, c in enumerate(checks, 1):
        if i % 5 == 0 or i == len(checks):
            progress.set(e.name, f"checking {i}/{len(checks)}")
        status, message = judge(c, probe, siblings, memo)
        o = Outcome(e.name, c, status, message)
        _waive(o, waivers, today)
        result.outcomes.append(o)
    result.seconds = time.monotonic() - t0
    n = {s: sum(o.status == s for o in result.outcomes) for s in STATUSES}
    progress.finish(e.name, "done: " + ", ".join(f"{v} {k}" for k, v in n.items() if v)
                    + f" ({result.seconds:.1f} s)", "error" if n["error"] else "fail" if n["fail"] else "pass")
    return result


def _not_run(e: Endpoint, checks: list[Check]) -> MachineResult:
    msg = "not run: interrupted (Ctrl-C) before this machine's checks finished"
    return MachineResult(e, [Outcome(e.name, c, "skipped", msg) for c in checks], error=None)


def _end_ssh(tmp: Path) -> None:
    """Close this run's SSH connections: each ControlMaster by `ssh -O exit`, then any ssh still
    running with this run's private directory (its -F config or ControlPath) on its command line."""
    for cm in tmp.glob("cm-*"):
        _disconnect(str(cm))
    mine = str(tmp)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0].decode(errors="replace")) == "ssh" and \
                any(mine.encode() in a for a in argv):
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), signal.SIGTERM)


def run_checks(endpoints: list[Endpoint], checks_for: Callable[[Endpoint], list[Check]], *,
               ssh: SshOptions | None = None, waivers: list[Waiver] | None = None, today: dt.date | None = None,
               baselines: list[str] | None = None, manifest: str | None = None, jobs: int = 8,
               progress: Progress | None = None) -> Report:
    """Check every machine. On Ctrl-C (KeyboardInterrupt), stop: machines not yet started are
    not started, the SSH connections are closed, and the report holds the machines that had
    finished, the others `skipped` as not run, with `interrupted` set."""
    ssh = ssh or SshOptions()
    today = today or dt.date.today()
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    progress = progress or Progress([e.name for e in endpoints])
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="rz-check-", dir="/tmp") as d:
        tmp = Path(d)
        os.chmod(tmp, 0o700)
        cfg = ssh_config_file(tmp, ssh)
        plans = [checks_for(e) for e in endpoints]
        pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(endpoints))))
        futures: list[Future[MachineResult]] = [
            pool.submit(check_machine, e, checks, ssh, progress, tmp, cfg, waivers or [], today, i)
            for i, (e, checks) in enumerate(zip(endpoints, plans, strict=True))]
        try:
            machines = [f.result() for f in futures]
        except KeyboardInterrupt:
            interrupted = True
            progress.interrupt()
            finished = [f.done() and not f.cancelled() and f.exception() is None for f in futures]
            pool.shutdown(wait=False, cancel_futures=True)
            _end_ssh(tmp)  # the running machines' ssh ends (exit 255): their threads return
            wait([f for f in futures if not f.cancelled()], timeout=10)
            _end_ssh(tmp)
            machines = [f.result() if ok else _not_run(e, checks)
                        for f, ok, e, checks in zip(futures, finished, endpoints, plans, strict=True)]
            for m, ok in zip(machines, finished, strict=True):
                if not ok:
                    progress.finish(m.endpoint.name, "not run: interrupted", "interrupted")
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    return Report(machines, baselines or [], manifest, started, time.monotonic() - t0, today, waivers or [],
                  interrupted=interrupted)
