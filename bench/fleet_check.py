"""`ringzero check` against a fleet of 100 machines on this one machine, vs the floor: plain `ssh`
running the same batched read script to all of them with the same parallelism.

Each machine is a throwaway sshd (`/usr/sbin/sshd -D`, its own host key) in a network namespace
this bench creates, reached over its own veth pair (a /30 of the benchmarking range 198.19.0.0/16,
RFC 2544, which this machine does not otherwise use), and in its own private mount namespace
(`unshare -m`) where the facts the `isolation` baseline reads are set up before sshd starts:
directories staged here are bind-mounted over `/proc/sys/kernel`, `/proc/sys/user`,
`/sys/module`, `/sys/kernel/security` and `/etc/libvirt`, a file over `/dev/kvm`, and
`/sys/fs/cgroup` is a cgroup2 or a tmpfs mount. Every machine gets its own mix of compliant and
broken states, and the verdict each state must give is written down here, by hand, per control
(`VERDICTS`): a run whose JUnit report says anything else fails the bench.

One run, both measured alternately (medians of 3): `ringzero check --inventory hosts.ini
--baseline isolation` with its JUnit, SARIF and HTML reports (the command, from process start,
default `--jobs 8`), and the floor, 8 threads each running `ssh -F <ringzero's own ssh_config>
HOST <the command ringzero's Probe sends>` (taken from `Probe.fetch` itself, so it is the same
script with the same keys). Prints both, the ratio (goal: at most 1.2x), ringzero's peak RSS,
the verdict counts, the report sizes, and checks the progress display: off a terminal one line
per machine; on a terminal (a pty of 100x30) a screen that never grows past 30 rows.

    flock /tmp/rz-guest.lock .venv/bin/python bench/fleet_check.py     # or: make bench-fleet

Everything it creates (namespaces, veth pairs, sshd processes, the temporary directory) is
removed on the way out, also on a failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import platform
import pty
import random
import re
import select
import shlex
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ringzero.checks.baseline import baseline_checks, load_catalogue  # noqa: E402
from ringzero.checks.probe import Probe, parse  # noqa: E402
from ringzero.checks.run import SshOptions, ssh_config_file  # noqa: E402
from tests.fixtures import junit_statuses  # noqa: E402
from tests.unit.test_cli_ux import Screen  # noqa: E402

MACHINES = 100
JOBS = 8  # `ringzero check`'s default --jobs
RUNS = 3
SSHD = "/usr/sbin/sshd"
NET = "198.19"  # 198.19.0.0/16: half of RFC 2544's benchmarking range; the check tier uses 198.18.0.0/29
TTY_SIZE = (100, 30)  # columns, rows of the pty the progress display is checked on

# ---- the states a machine can be in, and the verdict each must give ---------------------------
# knob -> variant -> the verdict of each control that variant decides. Written by hand from the
# catalogue's conditions, not computed by ringzero's interpreter: this is what the bench checks it
# against. (RZ-KVM-2 judges `nested` against the default, off.)
VERDICTS: dict[str, dict[str, dict[str, str]]] = {
    "cgroup": {"v2": {"RZ-CGROUP-1": "pass", "RZ-CGROUP-2": "pass"},
               "v2-without-io": {"RZ-CGROUP-1": "pass", "RZ-CGROUP-2": "fail"},
               "tmpfs": {"RZ-CGROUP-1": "fail", "RZ-CGROUP-2": "skipped"}},
    "apparmor": {"enforce": {"RZ-APPARMOR-1": "pass", "RZ-APPARMOR-2": "pass"},
                 "complain": {"RZ-APPARMOR-1": "pass", "RZ-APPARMOR-2": "fail"},
                 "none-loaded": {"RZ-APPARMOR-1": "pass", "RZ-APPARMOR-2": "fail"},
                 "disabled": {"RZ-APPARMOR-1": "fail", "RZ-APPARMOR-2": "skipped"},
                 "absent": {"RZ-APPARMOR-1": "fail", "RZ-APPARMOR-2": "skipped"}},
    "seccomp": {"full": {"RZ-SECCOMP-1": "pass"}, "without-kill": {"RZ-SECCOMP-1": "fail"}},
    "bpf": {"1": {"RZ-BPF-1": "pass"}, "2": {"RZ-BPF-1": "pass"}, "0": {"RZ-BPF-1": "fail"}},
    "ptrace": {"1": {"RZ-PTRACE-1": "pass"}, "3": {"RZ-PTRACE-1": "pass"}, "0": {"RZ-PTRACE-1": "fail"},
               "absent": {"RZ-PTRACE-1": "fail"}},
    "userns": {"clone-0": {"RZ-USERNS-1": "pass"}, "max-0": {"RZ-USERNS-1": "pass"},
               "apparmor-1": {"RZ-USERNS-1": "pass"}, "open": {"RZ-USERNS-1": "fail"}},
    "lsm": {"debian-12": {"RZ-LANDLOCK-1": "pass", "RZ-BPFLSM-1": "pass"},
            "without-landlock": {"RZ-LANDLOCK-1": "fail", "RZ-BPFLSM-1": "pass"},
            "without-bpf": {"RZ-LANDLOCK-1": "pass", "RZ-BPFLSM-1": "fail"},
            "absent": {"RZ-LANDLOCK-1": "fail", "RZ-BPFLSM-1": "fail"}},
    "kvm": {"600": {"RZ-KVM-1": "pass"}, "660": {"RZ-KVM-1": "pass"}, "666": {"RZ-KVM-1": "fail"},
            "604": {"RZ-KVM-1": "fail"}},
    "nested": {"none": {"RZ-KVM-2": "n/a"}, "intel-N": {"RZ-KVM-2": "pass"}, "amd-0": {"RZ-KVM-2": "pass"},
               "intel-Y": {"RZ-KVM-2": "fail"}, "amd-1": {"RZ-KVM-2": "fail"}},
    "qemu": {"absent": {"RZ-LIBVIRT-1": "n/a"}, "apparmor": {"RZ-LIBVIRT-1": "pass"},
             "commented": {"RZ-LIBVIRT-1": "pass"}, "none": {"RZ-LIBVIRT-1": "fail"},
             "unconfined": {"RZ-LIBVIRT-1": "fail"}},
}
COMPLIANT = {"cgroup": "v2", "apparmor": "enforce", "seccomp": "full", "bpf": "2", "ptrace": "1",
             "userns": "clone-0", "lsm": "debian-12", "kvm": "660", "nested": "intel-N", "qemu": "apparmor"}
BROKEN = {"cgroup": "v2-without-io", "apparmor": "complain", "seccomp": "without-kill", "bpf": "0", "ptrace": "0",
          "userns": "open", "lsm": "absent", "kvm": "666", "nested": "intel-Y", "qemu": "none"}


def states(n: int) -> list[dict[str, str]]:
    """n machines' states: the first compliant, the second broken in every control, every variant
    of every knob used, the rest a seeded mix (half of them compliant but for one or two knobs)."""
    rng = random.Random(15)
    out = [dict(COMPLIANT), dict(BROKEN)]
    longest = max(len(v) for v in VERDICTS.values())
    for i in range(longest):  # every variant at least once
        out.append({k: list(v)[i % len(v)] for k, v in VERDICTS.items()})
    while len(out) < n:
        if rng.random() < 0.5:
            s = dict(COMPLIANT)
            for k in rng.sample(list(VERDICTS), rng.randint(1, 2)):
                s[k] = rng.choice(list(VERDICTS[k]))
        else:
            s = {k: rng.choice(list(v)) for k, v in VERDICTS.items()}
        out.append(s)
    return out[:n]


def expected(state: dict[str, str]) -> dict[str, str]:
    return {c: v for k, variant in state.items() for c, v in VERDICTS[k][variant].items()}


def stage(state: dict[str, str], d: Path) -> str:
    """Write the files of `state` under `d`; the shell (run as root in the machine's fresh mount
    namespace, before sshd starts) that mounts them where ringzero reads."""

    def put(rel: str, text: str, mode: int = 0o644) -> Path:
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)
        return p

    for name in ("ngroups_max", "pid_max", "osrelease", "ostype", "hostname"):  # a few a process may read
        put(f"kernel/{name}", Path(f"/proc/sys/kernel/{name}").read_text())
    put("kernel/seccomp/actions_avail", {"full": "kill_process kill_thread trap errno user_notif trace log allow",
                                         "without-kill": "trap trace log allow"}[state["seccomp"]] + "\n")
    put("kernel/unprivileged_bpf_disabled", state["bpf"] + "\n")
    if state["ptrace"] != "absent":
        put("kernel/yama/ptrace_scope", state["ptrace"] + "\n")
    userns = state["userns"]
    put("kernel/unprivileged_userns_clone", "0\n" if userns == "clone-0" else "1\n")
    put("user/max_user_namespaces", "0\n" if userns == "max-0" else "63704\n")
    if userns == "apparmor-1":
        put("kernel/apparmor_restrict_unprivileged_userns", "1\n")
    put("cgroup.controllers", "cpuset cpu memory pids\n" if state["cgroup"] == "v2-without-io"
        else "cpuset cpu io memory hugetlb pids rdma misc\n")
    aa = state["apparmor"]
    (d / "module").mkdir()
    if aa != "absent":
        put("module/apparmor/parameters/enabled", "N\n" if aa == "disabled" else "Y\n")
    (d / "security").mkdir()
    if aa in ("enforce", "complain", "none-loaded"):
        profiles = {"enforce": "/usr/sbin/sshd (enforce)\nlibvirtd (enforce)\n",
                    "complain": "/usr/sbin/sshd (enforce)\nlibvirtd (complain)\n", "none-loaded": ""}[aa]
        put("security/apparmor/profiles", profiles)
    lsm = {"debian-12": "lockdown,capability,landlock,yama,apparmor,tomoyo,bpf",
           "without-landlock": "lockdown,capability,yama,apparmor,tomoyo,bpf",
           "without-bpf": "lockdown,capability,landlock,yama,apparmor,tomoyo", "absent": None}[state["lsm"]]
    if lsm is not None:
        put("security/lsm", lsm + "\n")
    nested = state["nested"]
    if nested != "none":
        vendor, value = nested.split("-")
        put(f"module/kvm_{vendor}/parameters/nested", value + "\n")
    put("kvm", "", int(state["kvm"], 8))
    (d / "libvirt").mkdir()
    qemu = {"absent": None, "apparmor": 'security_driver = "apparmor"\n',
            "commented": '#security_driver = "none"\nsecurity_default_confined = 1\n',
            "none": 'user = "libvirt-qemu"\nsecurity_driver = "none"\n',
            "unconfined": 'security_driver = "apparmor"\n  security_default_confined = 0\n'}[state["qemu"]]
    if qemu is not None:
        put("libvirt/qemu.conf", qemu)
    lines = ["set -e"]
    lines.append("mount -t cgroup2 none /sys/fs/cgroup" if state["cgroup"].startswith("v2")
                 else "mount -t tmpfs -o mode=755 none /sys/fs/cgroup")
    if state["cgroup"].startswith("v2"):
        lines.append(f"mount --bind {d}/cgroup.controllers /sys/fs/cgroup/cgroup.controllers")
    for src, dst in (("kernel", "/proc/sys/kernel"), ("user", "/proc/sys/user"), ("module", "/sys/module"),
                     ("security", "/sys/kernel/security"), ("libvirt", "/etc/libvirt"), ("kvm", "/dev/kvm")):
        lines.append(f"mount --bind {d / src} {dst}")
    return "\n".join(lines) + "\n"


# ---- the fleet: namespaces, links, sshd ---------------------------------------------------------
@dataclass
class Machine:
    name: str
    ns: str
    host_if: str
    addr: str  # the machine's side of its link
    state: dict[str, str]
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.dir / "sshd.log"

    def logins(self) -> int:
        return self.log.read_text(errors="replace").count("Accepted publickey for root")


@dataclass
class Fleet:
    dir: Path
    key: Path
    known_hosts: Path
    machines: list[Machine] = field(default_factory=list)


def _run(*cmd: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)}: {res.stderr.strip()}")


def _addresses(i: int) -> tuple[str, str]:
    base = i * 4
    return f"{NET}.{base // 256}.{base % 256 + 1}", f"{NET}.{base // 256}.{base % 256 + 2}"


@contextlib.contextmanager
def fleet(n: int, tmp: Path) -> Iterator[Fleet]:
    assert os.geteuid() == 0, "the fleet needs root (network and mount namespaces, sshd)"
    assert os.path.exists(SSHD), "openssh-server (sshd) is installed by `make setup` (tools/host/packages.txt)"
    for path in ("/dev/kvm", "/etc/libvirt", "/sys/kernel/security", "/proc/sys/user"):
        assert os.path.exists(path), f"{path} must exist on this machine: the fleet's states are mounted over it"
    used = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True, check=True).stdout
    assert f" {NET}." not in used, f"{NET}.0.0/16 is in use on this machine:\n{used}"
    tag = f"{os.getpid() % 100000:05d}"
    key = tmp / "client_ed25519"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    (tmp / "authorized_keys").write_text((tmp / "client_ed25519.pub").read_text())
    f = Fleet(tmp, key, tmp / "known_hosts")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    try:
        for i, state in enumerate(states(n)):
            here, there = _addresses(i)
            m = Machine(f"m{i:03d}", f"rz-fleet-{tag}-{i}", f"rzf{tag}{i:03d}", there, state, tmp / f"m{i:03d}")
            f.machines.append(m)
            m.dir.mkdir()
            script = stage(state, m.dir / "state")
            _run("ip", "netns", "add", m.ns)
            _run("ip", "-n", m.ns, "link", "set", "lo", "up")
            _run("ip", "link", "add", m.host_if, "type", "veth", "peer", "name", "eth0", "netns", m.ns)
            _run("ip", "addr", "add", f"{here}/30", "dev", m.host_if)
            _run("ip", "link", "set", m.host_if, "up")
            _run("ip", "-n", m.ns, "addr", "add", f"{there}/30", "dev", "eth0")
            _run("ip", "-n", m.ns, "link", "set", "eth0", "up")
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(m.dir / "host_ed25519"))
            (m.dir / "sshd_config").write_text(
                f"ListenAddress {there}:22\nHostKey {m.dir / 'host_ed25519'}\nPidFile none\n"
                f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nStrictModes no\nPermitRootLogin prohibit-password\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nUseDNS no\n"
                "AllowTcpForwarding no\nLogLevel VERBOSE\nMaxStartups 100\n")
            (m.dir / "start.sh").write_text(
                script + f"exec {SSHD} -D -f {m.dir / 'sshd_config'} -E {m.log}\n")
            # nsenter (not `ip netns exec`, which remounts /sys) into the network namespace, then a
            # private mount namespace of its own: the mounts are this machine's alone, and go with it
            m.proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{m.ns}", "unshare", "--mount",
                                       "--propagation", "private", "sh", str(m.dir / "start.sh")],
                                      stdout=subprocess.DEVNULL, stderr=(m.dir / "start.err").open("w"),
                                      start_new_session=True)
            host_pub = " ".join((m.dir / "host_ed25519.pub").read_text().split()[:2])
            with f.known_hosts.open("a") as kh:
                kh.write(f"{there} {host_pub}\n")
        deadline = time.monotonic() + 60
        for m in f.machines:
            while not (m.log.exists() and "Server listening on" in m.log.read_text(errors="replace")):
                assert m.proc is not None and m.proc.poll() is None, \
                    f"{m.name}: sshd exited: {(m.dir / 'start.err').read_text()}" \
                    f"{m.log.read_text(errors='replace') if m.log.exists() else ''}"
                assert time.monotonic() < deadline, f"{m.name}: sshd did not listen: {m.log}"
                time.sleep(0.05)
        yield f
    finally:
        for m in f.machines:
            if m.proc is not None and m.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(m.proc.pid, signal.SIGTERM)  # sshd and the sessions it forked
        for m in f.machines:
            if m.proc is not None:
                try:
                    m.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(m.proc.pid, signal.SIGKILL)
                    m.proc.wait(timeout=10)
        for m in f.machines:
            for cmd in (["ip", "link", "del", m.host_if], ["ip", "netns", "del", m.ns]):
                subprocess.run(cmd, capture_output=True, timeout=30, check=False)


# ---- the two sides -------------------------------------------------------------------------------
def probe_command(keys: list[str]) -> str:
    """The remote command `Probe.fetch` sends for `keys`, quoted as testinfra quotes it."""
    sent: list[str] = []

    class Recorder:
        def run(self, command: str, *args: str) -> Any:
            sent.append(command % tuple(shlex.quote(a) for a in args))
            return type("Result", (), {"rc": 0, "stdout": "", "stderr": ""})()

    Probe(Recorder(), "floor").fetch(keys)
    assert len(sent) == 1, sent
    return sent[0]


def floor(f: Fleet, cfg: str, command: str, keys: list[str]) -> float:
    """Plain ssh running `command` on every machine, JOBS at a time; every machine's every key read."""

    def one(m: Machine) -> tuple[Machine, subprocess.CompletedProcess[str]]:
        argv = ["ssh", "-F", cfg, "-i", str(f.key), "-o", "User=root", "-o", "Port=22", m.addr, command]
        return m, subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

    t0 = time.monotonic()
    pool = ThreadPoolExecutor(JOBS)
    try:
        results = list(pool.map(one, f.machines))
    finally:  # on Ctrl-C, the machines not started are not
        pool.shutdown(wait=True, cancel_futures=True)
    seconds = time.monotonic() - t0
    for m, res in results:
        assert res.returncode == 0, f"{m.name}: {res.stderr}"
        got = parse(res.stdout)
        assert sorted(got) == keys, f"{m.name}: read {sorted(got)}"
    return seconds


@dataclass
class Run:
    seconds: float
    max_rss_kib: int
    rc: int
    stdout: str
    stderr: str


def ringzero(argv: list[str], tmp: Path, env: dict[str, str] | None = None) -> Run:
    """The command from process start to exit, and its peak RSS (wait4's rusage of that process)."""
    out, err = tmp / "stdout", tmp / "stderr"
    with out.open("w") as o, err.open("w") as e:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=o, stderr=e, env=env)
        with _ended(proc):
            _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(seconds, usage.ru_maxrss, proc.returncode, out.read_text(), err.read_text())


def on_a_tty(argv: list[str], size: tuple[int, int]) -> tuple[int, str]:
    """`argv` with its stderr on a pty of `size` (columns, rows): exit code and what it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    env = {**os.environ, "COLUMNS": str(size[0]), "LINES": str(size[1]), "TERM": "xterm"}
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    with _ended(proc):
        _read_pty(master, proc, chunks)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def _read_pty(master: int, proc: subprocess.Popen[bytes], chunks: list[bytes]) -> None:
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the pty
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break


@contextlib.contextmanager
def _ended(proc: subprocess.Popen[Any]) -> Iterator[None]:
    """On a failure or Ctrl-C while `ringzero check` runs, stop it as Ctrl-C does (it closes its
    SSH connections and removes its directory), so it does not outlive the bench."""
    try:
        yield
    except BaseException:
        if proc.returncode is None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        raise


def verdicts(junit: Path, f: Fleet) -> dict[str, int]:
    """Every machine's every verdict in the JUnit report, against its state; the counts."""
    got = junit_statuses(junit)
    want = {(m.name, c): s for m in f.machines for c, s in expected(m.state).items()}
    wrong = [f"{h} {c}: {got.get((h, c))}, expected {s} ({f.machines[int(h[1:])].state})"
             for (h, c), s in want.items() if got.get((h, c)) != s]
    assert not wrong and len(got) == len(want), "wrong verdicts:\n" + "\n".join(wrong[:20])
    counts: dict[str, int] = {}
    for s in got.values():
        counts[s] = counts.get(s, 0) + 1
    return counts


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machines", type=int, default=MACHINES)
    ap.add_argument("--runs", type=int, default=RUNS)
    args = ap.parse_args()
    n, runs = args.machines, args.runs
    signal.signal(signal.SIGTERM, _terminate)
    catalogue = load_catalogue()
    controls = catalogue.baseline("isolation").controls
    assert {c.id for c in controls} == {c for v in VERDICTS.values() for o in v.values() for c in o}, \
        "a control of the isolation baseline has no states in VERDICTS (or VERDICTS names one it lacks)"
    keys = sorted({k for c in baseline_checks("x", catalogue.baseline("isolation"), {"nested": "off"})
                   for k in c.reads})
    command = probe_command(keys)
    load = os.getloadavg()  # the lock keeps the guest tiers out; whatever else runs shows here
    with tempfile.TemporaryDirectory(prefix="rz-bench-fleet-") as d:
        tmp = Path(d)
        t0 = time.monotonic()
        with fleet(n, tmp) as f:
            setup_s = time.monotonic() - t0
            inventory = tmp / "hosts.ini"
            inventory.write_text("[fleet]\n" + "".join(
                f"{m.name} ansible_host={m.addr} ansible_user=root ansible_ssh_private_key_file={f.key}\n"
                for m in f.machines))
            floor_dir = tmp / "floor"
            floor_dir.mkdir()
            cfg = ssh_config_file(floor_dir, SshOptions(str(f.key), str(f.known_hosts), config="none"))
            reports = tmp / "reports"

            def argv(i: int) -> list[str]:
                return [sys.executable, "-m", "ringzero.cli", "check", "--inventory", str(inventory),
                        "--baseline", "isolation", "--known-hosts", str(f.known_hosts), "--ssh-config", "none",
                        "--junit", str(reports / f"{i}.xml"), "--sarif", str(reports / f"{i}.sarif"),
                        "--html", str(reports / f"{i}.html")]

            ours: list[Run] = []
            floors: list[float] = []
            counts: dict[str, int] = {}
            for i in range(runs):
                logins = [m.logins() for m in f.machines]
                run = ringzero(argv(i), tmp)
                assert run.rc == 1, f"exit {run.rc} (expected 1: some checks fail, none is an error)\n" \
                                    + run.stdout[-2000:] + run.stderr[-2000:]
                counts = verdicts(reports / f"{i}.xml", f)
                # one SSH connection per machine
                assert [m.logins() - n for m, n in zip(f.machines, logins, strict=True)] == [1] * n
                # off a terminal: one plain line per machine, when it is done
                lines = run.stderr.splitlines()
                assert sorted(ln.split()[0] for ln in lines) == [m.name for m in f.machines], run.stderr[-2000:]
                assert all(" done: " in ln for ln in lines) and "\x1b" not in run.stderr
                ours.append(run)
                floors.append(floor(f, cfg, command, keys))
            sarif = json.loads((reports / "0.sarif").read_text())
            assert len(sarif["runs"][0]["results"]) == n * len(controls)
            html = (reports / "0.html").read_text()
            assert html.count("<tr") >= n
            sizes = {k: (reports / f"0.{k}").stat().st_size for k in ("xml", "sarif", "html")}
            # on a terminal: a summary and the host lines that fit, redrawn in place
            rc, shown = on_a_tty(argv(runs), TTY_SIZE)
            assert rc == 1, shown[-2000:]
            screen = Screen()
            screen.feed(shown)
            assert screen.max_row <= TTY_SIZE[1] - 1, f"the display grew to {screen.max_row + 1} rows"
            plain_rows = [re.sub(r"\x1b\[[0-9;]*m", "", r) for r in screen.rows.values()]
            assert all(len(r) < TTY_SIZE[0] for r in plain_rows)
            assert plain_rows[0].startswith(f"ringzero check: {n}/{n} done, 0 running"), plain_rows[0]
            verdicts(reports / f"{runs}.xml", f)
    a, b = statistics.median(r.seconds for r in ours), statistics.median(floors)
    out = {"date": dt.datetime.now(dt.UTC).date().isoformat(),
           "machine": f"{os.cpu_count()} cores, Linux {platform.release()}, load {load[0]:.1f} at the start",
           "machines": n, "jobs": JOBS, "reads_per_machine": len(keys), "fleet_setup_s": round(setup_s, 1),
           "ringzero_check_s": [round(r.seconds, 2) for r in ours], "floor_ssh_s": [round(s, 2) for s in floors],
           "ratio": round(a / b, 2), "peak_rss_mib": round(max(r.max_rss_kib for r in ours) / 1024, 1),
           "verdicts": counts, "report_bytes": sizes, "tty_bytes": len(shown.encode())}
    print(json.dumps(out))
    print(f"ringzero check --inventory ({n} machines, --jobs {JOBS}, JUnit+SARIF+HTML): {a:.2f} s; "
          f"plain ssh running the same read script to all, {JOBS} at a time: {b:.2f} s; ratio {a / b:.2f}x "
          f"(goal <= 1.2x); peak RSS {out['peak_rss_mib']} MiB; every verdict as the states say: {counts}")


if __name__ == "__main__":
    main()
