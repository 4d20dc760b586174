"""Each fault, then its recovery as the README's recovery table gives it, proven on the node.

The tests run in order on one guest (see conftest): every fault starts from a converged stack
and ends with `assert_converged`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import virsh
from tests.engine.conftest import ROOT, make_project
from tests.faults.conftest import (
    NODE,
    Baseline,
    FaultStack,
    assert_converged,
    ledger,
    module_pid,
    wait_for_module,
    wait_for_ssh,
)


def _pulumi_up_fails(stack: FaultStack, proc: subprocess.Popen[bytes], log: Path, timeout: float = 900) -> str:
    proc.wait(timeout=timeout)
    out = log.read_text()
    assert proc.returncode != 0, f"pulumi up succeeded despite the fault:\n{out[-3000:]}"
    return out


def test_converged_before_any_fault(fstack: FaultStack, baseline: Baseline) -> None:
    assert_converged(fstack, baseline.etc, baseline.handmade)


def test_two_ups_on_one_stack_the_second_is_refused(fstack: FaultStack, baseline: Baseline) -> None:
    fstack.set_memory_max("500M")
    log = fstack.workdir / "first-up.log"
    first = fstack.start_up(log)
    wait_for_module(fstack.node(), first, log)
    second = fstack.project.pulumi("up", "--yes", check=False)
    assert second.returncode != 0 and "the stack is currently locked" in second.stdout + second.stderr, second.stdout
    first.wait(timeout=900)
    assert first.returncode == 0, log.read_text()[-3000:]
    assert fstack.node().ssh("systemctl show -P MemoryMax web.slice") == str(500 * 1024 * 1024)
    assert_converged(fstack, baseline.etc, baseline.handmade)


def test_sigkill_of_pulumi_up_during_apply_then_cancel_and_rerun(fstack: FaultStack, baseline: Baseline) -> None:
    """The controller dies mid-apply: its worker and ansible-playbook end with it (no orphaned
    run goes on changing the node), the stack stays locked until `pulumi cancel`, and a re-run
    converges."""
    fstack.set_memory_max("496M")
    log = fstack.workdir / "killed-up.log"
    proc = fstack.start_up(log)
    guest = fstack.node()
    wait_for_module(guest, proc, log)
    plugins = _descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)  # the CLI only, as `kill -9 <pid of pulumi up>` does
    proc.wait()
    # No ansible-playbook of this stack runs on here once its controller is gone.
    deadline = time.monotonic() + 60
    while (left := _ansible_processes()) and time.monotonic() < deadline:
        time.sleep(1)
    assert left == [], f"orphaned Ansible processes kept running: {left}"
    # ... and the node's module run ends (or had ended) rather than running on unobserved.
    deadline = time.monotonic() + 120
    while module_pid(guest) is not None:
        assert time.monotonic() < deadline, "the module run went on for 120 s after its controller died"
        time.sleep(1)
    # The documented recovery: end Pulumi's leftover plugins, `pulumi cancel`, `pulumi up`.
    for pid in plugins:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    res = fstack.project.pulumi("up", "--yes", check=False)
    assert res.returncode != 0 and "the stack is currently locked" in res.stdout + res.stderr
    fstack.project.pulumi("cancel", "--yes")
    fstack.project.pulumi("up", "--yes", timeout=1500)
    assert guest.ssh("systemctl show -P MemoryMax web.slice") == str(496 * 1024 * 1024)
    assert_converged(fstack, baseline.etc, baseline.handmade)


def _descendants(root: int) -> list[int]:
    """Every process below `root` (Pulumi's plugins, the Ansible worker, ...), children first."""
    parents: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{d}/stat").read_text()
                parents[int(d)] = int(stat[stat.rfind(")") + 2 :].split()[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        kids = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += kids
        frontier = kids
    return found[::-1]


def _ansible_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    # ansible-runner's ansible-playbook names its private data dir (ringzero-ansible-*); the
    # worker driving it runs as `python -m ringzero.playbook`
    return [line.strip() for line in out.splitlines()
            if ("ansible-playbook" in line and "ringzero-ansible-" in line) or "-m ringzero.playbook" in line]


# Cut the SSH session a module run is under (its first sshd ancestor), as soon as one runs.
CUT_MODULE_SESSION = textwrap.dedent("""\
    for _ in $(seq 1 150); do
      p=$(sed -n 's/^pid \\([0-9]*\\),.*/\\1/p' /var/lib/ringzero/lock 2>/dev/null)
      while [ -n "$p" ] && [ "$p" -gt 1 ] && [ -r "/proc/$p/comm" ]; do
        if [ "$(cat "/proc/$p/comm")" = sshd ]; then kill -9 "$p" && echo "cut $p" && exit 0; fi
        p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null)
      done
      sleep 0.2
    done
    echo "no module run under an sshd session within 30 s" >&2; exit 1""")


def test_ssh_cut_mid_module_run_then_rerun(fstack: FaultStack, baseline: Baseline) -> None:
    fstack.set_memory_max("480M")
    fstack.add_profiles("sshcut")  # a module run long enough to be cut in the middle
    log = fstack.workdir / "ssh-cut.log"
    proc = fstack.start_up(log)
    guest = fstack.node()
    wait_for_module(guest, proc, log)
    assert guest.ssh(CUT_MODULE_SESSION).startswith("cut ")
    out = _pulumi_up_fails(fstack, proc, log)
    assert "PlaybookRun" in out, out[-3000:]
    fstack.project.pulumi("up", "--yes", timeout=1500)
    assert guest.ssh("systemctl show -P MemoryMax web.slice") == str(480 * 1024 * 1024)
    assert_converged(fstack, baseline.etc, baseline.handmade)


def test_guest_reset_mid_apply_then_rerun(fstack: FaultStack, baseline: Baseline) -> None:
    """A power cut of the guest in the middle of the module run: each file is old or new, the
    ledger (fsync'd before every change) claims at most what the re-run converges."""
    fstack.set_memory_max("464M")
    fstack.add_profiles("reset")  # a module run long enough to be cut in the middle
    log = fstack.workdir / "reset.log"
    proc = fstack.start_up(log)
    guest = fstack.node()
    boot_id = guest.ssh("cat /proc/sys/kernel/random/boot_id")
    wait_for_module(guest, proc, log)
    virsh("reset", NODE)
    _pulumi_up_fails(fstack, proc, log)
    wait_for_ssh(guest)
    assert guest.ssh("cat /proc/sys/kernel/random/boot_id") != boot_id
    fstack.project.pulumi("up", "--yes", timeout=1500)
    assert guest.ssh("systemctl show -P MemoryMax web.slice") == str(464 * 1024 * 1024)
    assert_converged(fstack, baseline.etc, baseline.handmade)


def test_libvirtd_restarted_during_up_then_rerun(fstack: FaultStack, baseline: Baseline) -> None:
    """libvirtd goes away while `pulumi up` creates a volume (a second image declared); the
    running guest is not touched, and the re-run converges with exactly one such volume."""
    uuid = virsh("domuuid", NODE).strip()
    image = dict(fstack.config["ringzero:images"][0], name="spare")
    fstack.config["ringzero:images"].append(image)
    fstack.write_config()
    log = fstack.workdir / "libvirtd.log"
    proc = fstack.start_up(log)
    deadline = time.monotonic() + 600
    while "Volume" not in log.read_text() or "creating" not in log.read_text():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "pulumi up did not start creating the volume"
        time.sleep(0.2)
    source = Path(image["source"])
    source = source if source.is_absolute() else fstack.project.dir / source
    _stop_libvirtd_mid_upload(proc, log, source)
    time.sleep(2)
    subprocess.run([str(ROOT / "tools/hypervisor/start.sh")], check=True, capture_output=True, timeout=120)
    out = _pulumi_up_fails(fstack, proc, log)  # it hung here for good before the go-libvirt fix
    assert "procedure interrupted while awaiting response" in out, _errors(out)
    # the documented recovery (README: "When a run is interrupted"): run it again ...
    res = fstack.project.pulumi("up", "--yes", check=False, timeout=1500)
    if res.returncode != 0:
        out = res.stdout + res.stderr
        partial = re.search(r"updating (urn:pulumi:\S+Volume::\S+?): ", out)
        if partial:
            # ... the volume whose upload was cut is in the state, created with an error, and
            # libvirt's provider cannot update a volume: replace it (delete, upload again)
            assert "doesn't support update" in out, _errors(out)
            fstack.project.pulumi("up", "--yes", "--replace", partial.group(1), timeout=1500)
        else:
            # ... or the create made the volume but the state lost it: libvirt refuses the
            # new one on its name; remove it with virsh, run again
            assert "exists already" in out or "already exists" in out, _errors(out)
            for name in _volumes("spare"):
                virsh("vol-delete", "--pool", "default", name)
            fstack.project.pulumi("up", "--yes", timeout=1500)
    pending = json.loads(fstack.project.pulumi("stack", "export").stdout)["deployment"].get("pending_operations")
    if any(op["type"] == "creating" for op in pending or []):
        fstack.project.pulumi("refresh", "--yes", "--clear-pending-creates", timeout=900)
    volumes = _volumes("spare")
    assert len(volumes) == 1, volumes
    assert (_pool_dir() / volumes[0]).stat().st_size == source.stat().st_size  # uploaded whole this time
    assert virsh("domuuid", NODE).strip() == uuid and virsh("domstate", NODE).strip() == "running"
    fstack.config["ringzero:images"].pop()
    fstack.write_config()
    fstack.project.pulumi("up", "--yes", timeout=900)
    assert _volumes("spare") == []
    assert_converged(fstack, baseline.etc, baseline.handmade)


def _stop_libvirtd_mid_upload(proc: subprocess.Popen[bytes], log: Path, source: Path) -> None:
    """Stop libvirtd while it receives the new volume's data: once the volume file has grown
    past 16 MiB, libvirtd is frozen (SIGSTOP), the file is seen short of the source's size,
    then SIGTERM and SIGCONT end it, and stop.sh finishes (as a restart by the OS would)."""
    full = source.stat().st_size
    pool = _pool_dir()
    pid = int(re.findall(r"^libvirtd=(\d+)$", Path("/run/ringzero/libvirt.pids").read_text(), re.M)[0])
    deadline = time.monotonic() + 600
    volume: Path | None = None
    while volume is None or not 16 * 1024 * 1024 < volume.stat().st_size < full:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "libvirtd did not start receiving the volume's data"
        if volume is None and (names := _volumes("spare")):
            volume = pool / names[0]  # a dir pool's volume is the file of its name
        time.sleep(0.02 if volume else 0.2)
    os.kill(pid, signal.SIGSTOP)  # virsh would hang from here on: the file is read directly
    try:
        frozen = volume.stat().st_size
        assert frozen < full, f"the upload ended ({frozen} of {full} bytes) before libvirtd was stopped"
    finally:
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)
    subprocess.run([str(ROOT / "tools/hypervisor/stop.sh")], check=True, capture_output=True, timeout=120)


def _pool_dir() -> Path:
    """Where pool `default` keeps its volumes (a dir pool: a volume is the file of its name)."""
    return Path(re.findall(r"<path>(.*)</path>", virsh("pool-dumpxml", "default"))[0])


def _errors(out: str) -> str:
    return "\n".join(line for line in out.splitlines() if "error" in line.lower())


def _volumes(word: str) -> list[str]:
    """Names of the volumes in pool `default` that contain `word` (vol-list: name, then path)."""
    return [line.split()[0] for line in virsh("vol-list", "default").splitlines() if word in line]


def test_full_state_filesystem_fails_clearly_and_recovers(fstack: FaultStack, baseline: Baseline) -> None:
    """The Pulumi state directory on a full filesystem (a 64 MiB tmpfs): `pulumi up` fails
    naming the cause, the state it leaves still loads and lists every resource, and the same
    `pulumi up` succeeds once there is space again."""
    project = fstack.project
    state = Path(project.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
    mnt = fstack.workdir / "fullfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(mnt)], check=True)
    env_before = project.env["PULUMI_BACKEND_URL"]
    try:
        shutil.copytree(state, mnt / "state", symlinks=True)
        project.env["PULUMI_BACKEND_URL"] = f"file://{mnt / 'state'}"
        before = json.loads(project.pulumi("stack", "export").stdout)
        urns = {r["urn"] for r in before["deployment"]["resources"]}
        filler = mnt / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=128"], capture_output=True)
        fstack.set_memory_max("448M")
        res = project.pulumi("up", "--yes", check=False, timeout=1500)
        assert res.returncode != 0 and "no space left on device" in (res.stdout + res.stderr).lower(), \
            res.stdout[-3000:] + res.stderr[-2000:]
        filler.unlink()
        # The checkpoint itself is whole: every stack file parses and lists every resource.
        for checkpoint in (mnt / "state" / ".pulumi" / "stacks").rglob("*.json"):
            json.loads(checkpoint.read_text())
        after = json.loads(project.pulumi("stack", "export").stdout)
        assert {r["urn"] for r in after["deployment"]["resources"]} == urns
        res = project.pulumi("up", "--yes", check=False, timeout=1500)
        if res.returncode != 0:
            # Pulumi's file backend writes its lock through a temp file beside it; the full disk
            # left that temp file empty, and the backend then reads it as a lock and fails on
            # every command with "unexpected end of JSON input". The README's recovery:
            # `pulumi cancel` (it removes the lock files, that one included), then `pulumi up`.
            assert "unexpected end of JSON input" in res.stdout + res.stderr, res.stdout[-2000:] + res.stderr[-2000:]
            locks = mnt / "state" / ".pulumi" / "locks"
            assert [f for f in locks.rglob("*.tmp") if f.stat().st_size == 0], sorted(map(str, locks.rglob("*")))
            project.pulumi("cancel", "--yes")
            assert not [f for f in locks.rglob("*") if f.is_file()]
            project.pulumi("up", "--yes", timeout=1500)
        assert fstack.node().ssh("systemctl show -P MemoryMax web.slice") == str(448 * 1024 * 1024)
    finally:
        # the newest state goes back where the rest of the tier (and its teardown) finds it
        if (mnt / "state").is_dir():
            (mnt / "filler").unlink(missing_ok=True)
            shutil.rmtree(state)
            shutil.copytree(mnt / "state", state, symlinks=True)
        project.env["PULUMI_BACKEND_URL"] = env_before
        subprocess.run(["umount", str(mnt)], check=False)
    assert_converged(fstack, baseline.etc, baseline.handmade)


SECOND_STACK = """\
import pulumi

from ringzero.plan import node_plan
from ringzero.playbook import PlaybookRun
from ringzero.spec import from_data

conf = pulumi.Config("ringzero")
# the node as a host of its own: this stack declares policies for a machine it did not create
node = conf.require_object("connection")
topology = from_data({"hosts": [{"name": node["name"]}], "nodes": [conf.require_object("node")]})
PlaybookRun("second-policies", node=node, private_key=conf.require_secret("key"),
            plan=node_plan(topology, node["name"]))
"""


def test_two_stacks_applying_to_one_node(fstack: FaultStack, baseline: Baseline, tmp_path: Path) -> None:
    """A second stack (the library used directly) applies its own slice to the same node while
    the first applies a change: the runs take turns on the node's lock, each owns only its own
    objects, and destroying the second leaves the first's in place."""
    outs = fstack.outputs()
    vm = outs["vms"][NODE]
    second = make_project(tmp_path, SECOND_STACK, {
        "ringzero:node": {"node": NODE, "slices": [{"name": "second.slice", "cpu_weight": 42}]},
        "ringzero:connection": {"name": NODE, "host": "127.0.0.1", "port": int(vm["ssh_port"]), "user": "root",
                                "known_hosts": vm["known_hosts"], "instance": "second"},
    }, name="rzfaults-second")
    # set-all: `config set` would read a value starting with "-----BEGIN" as a flag
    second.pulumi("config", "set-all", "--secret", f"ringzero:key={outs['access_private_key']}")
    fstack.set_memory_max("432M")
    log = fstack.workdir / "first-of-two.log"
    first = fstack.start_up(log)
    wait_for_module(fstack.node(), first, log)
    second.pulumi("up", "--yes", timeout=1500)  # waits for the first run's lock on the node
    first.wait(timeout=900)
    assert first.returncode == 0, log.read_text()[-3000:]
    guest = fstack.node()
    owners = {e["owner"] for p, e in ledger(guest)["files"].items()}
    assert owners == {f"rzfaults/test/{NODE}", f"rzfaults-second/test/{NODE}"}, owners
    assert guest.ssh("systemctl show -P CPUWeight second.slice") == "42"
    second.pulumi("destroy", "--yes", timeout=900)
    assert guest.run("test -e /etc/systemd/system/second.slice").returncode == 1
    assert guest.ssh("systemctl show -P MemoryMax web.slice") == str(432 * 1024 * 1024)
    assert {e["owner"] for e in ledger(guest)["files"].values()} == {f"rzfaults/test/{NODE}"}
    assert_converged(fstack, baseline.etc, baseline.handmade)


@pytest.fixture(autouse=True)
def _no_leftover_runs(fstack: FaultStack) -> None:
    """A fault test that failed half way may leave its `pulumi up` running (and the stack
    locked): end it, and its lock, so that the next test starts from a quiet stack."""
    def leftovers() -> list[int]:
        out = subprocess.run(["pgrep", "-f", "pulumi up --yes --stack test"], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split() if int(pid) != os.getpid()]

    found = leftovers()
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while leftovers() and time.monotonic() < deadline:
        time.sleep(1)
    if found:
        fstack.project.pulumi("cancel", "--yes", check=False)
