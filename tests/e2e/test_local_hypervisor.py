"""`pulumi up` boots Debian guests on libvirtd; SSH on 127.0.0.1 with pinned host keys;
Ansible applies their kernel policies and the compliance suite proves them.

Runs in order: hand-made objects → up (policies applied, compliance green) → no secret on
disk → checks in the guests → no-op up (no Ansible, no SSH) → drift → refresh (drift shown,
compliance fails) → up repairs → up killed with SIGKILL mid-apply (no secret on disk), then
cancel and a re-run (stale copies removed, no secret on disk) → memory lowered (live, same
domain, no restart) → memory and vCPUs raised (same domain, clean restart, policies survive)
→ policies removed (guests clean) → plain `pulumi destroy` (clean shutdown, ours gone,
hand-made kept, no secret on disk).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from ringzero import keyfiles
from ringzero.checks import expectations
from ringzero.compliance import Verdict, run_compliance
from ringzero.guest import GuestLifecycleProvider, connected, domain_state
from ringzero.spec import from_manifest
from ringzero.stack import key_dir
from tests.e2e.conftest import ROOT, URI, Guest, Stack, find_secrets, host_key_needles, secret_needles, virsh
from tests.fixtures import junit_statuses, leftovers_script

HANDMADE_DOMAIN = "handmade-rz-e2e"
HANDMADE_VOLUME = "handmade-rz-e2e.qcow2"
HANDMADE_XML = f"""<domain type='qemu'><name>{HANDMADE_DOMAIN}</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os></domain>"""

SHUTDOWN_MARKER_UNIT = """[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=/bin/sh -c 'echo clean > /root/ringzero-shutdown; sync; echo "ringzero-e2e: clean shutdown" > /dev/ttyS0'

[Install]
WantedBy=multi-user.target
"""

pytestmark = pytest.mark.e2e

# What the drift test breaks on vm1: its checks, and only those, must fail.
DRIFTED = {
    "vm1::slice:web.slice::memory.max",
    "vm1::apparmor:ringzero-demo-enforce::mode",
    "vm1::apparmor:ringzero-demo-enforce::allow:/etc/hostname",
    "vm1::apparmor:ringzero-demo-enforce::deny:/etc/shadow",
}


def _mem_total_kib(guest: Guest) -> int:
    match = re.search(r"MemTotal:\s+(\d+)", guest.ssh("cat /proc/meminfo"))
    assert match, "no MemTotal in the guest's /proc/meminfo"
    return int(match.group(1))


def _vms(stack: Stack) -> list[dict[str, object]]:
    return list(stack.config["ringzero:vms"])


def _resource_outputs(stack: Stack, name: str) -> dict[str, Any]:
    """A resource's outputs as the state holds them (after `pulumi refresh`, say)."""
    state = json.loads(stack.project.pulumi("stack", "export", "--show-secrets").stdout)
    for r in state["deployment"]["resources"]:
        if r["urn"].endswith(f"::{name}"):
            return dict(r.get("outputs", {}))
    raise AssertionError(f"no resource named {name} in the state")


def _declared_checks(stack: Stack) -> int:
    return len(expectations(from_manifest(json.loads(stack.outputs()["manifest"]))))


def _suite_on_guests(stack: Stack, report: str) -> Verdict:
    """The declared checks, as ComplianceCheck runs them, against the stack's guests from here."""
    outs = stack.outputs()
    nodes = [{"name": n, "host": "127.0.0.1", "port": outs["vms"][n]["ssh_port"], "user": "root",
              "known_hosts": outs["vms"][n]["known_hosts"]} for n in ("vm1", "vm2")]
    return run_compliance(outs["manifest"], nodes, outs["access_private_key"], str(stack.workdir / report))


def _sarif_results(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(host, rule) -> result of a SARIF report, which must validate against the OASIS 2.1.0
    schema and GitHub's upload rules."""
    import jsonschema

    from tests.sarif_rules import github_sarif_problems

    doc = json.loads(path.read_text())
    jsonschema.validate(doc, json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text()))
    assert github_sarif_problems(doc) == []
    return {(r["properties"]["host"], r["ruleId"]): r for r in doc["runs"][0]["results"]}


def test_handmade_objects_exist_before(stack: Stack) -> None:
    if HANDMADE_DOMAIN not in virsh("list", "--all", "--name").split():
        xml = stack.workdir / "handmade.xml"
        xml.write_text(HANDMADE_XML)
        virsh("define", str(xml))
    if HANDMADE_VOLUME not in virsh("vol-list", "default"):
        virsh("vol-create-as", "default", HANDMADE_VOLUME, "16M", "--format", "qcow2")
    assert HANDMADE_DOMAIN in virsh("list", "--all", "--name").split()


def test_up_boots_guests_that_answer_ssh(stack: Stack) -> None:
    t0 = time.monotonic()
    res = stack.project.pulumi("up", "--yes", timeout=1500)
    stack.logs["the first pulumi up's output"] = res.stdout + res.stderr
    print(f"pulumi up (2 guests) took {time.monotonic() - t0:.0f} s")
    outs = stack.outputs()
    assert set(outs["vms"]) == {"vm1", "vm2", "nested1"}
    assert outs["vms"]["nested1"]["host"] == "vm2-libvirt" and outs["vms"]["nested1"]["ssh_endpoint"] == ""
    for name in ("vm1", "vm2"):
        vm = outs["vms"][name]
        assert vm["host"] == "local" and vm["ssh_endpoint"] == f"root@127.0.0.1:{vm['ssh_port']}"
        assert vm["console_log"] == f"/var/log/libvirt/qemu/{name}-console.log"
        assert "running" in virsh("domstate", name)
    # vm2's libvirtd is used only once vm2 is prepared (its PlaybookRun done) and answers SSH:
    # every resource placed on it waits for both (its provider does not: it connects on first use)
    state = json.loads(stack.project.pulumi("stack", "export").stdout)["deployment"]["resources"]
    placed = [r for r in state if "::vm2-libvirt-libvirt::" in r.get("provider", "")]
    assert {r["urn"].rsplit("::", 1)[1] for r in placed} == {
        "vm2-libvirt-blank-volume", "nested1-disk", "nested1-seed", "nested1-domain"}
    for r in placed:
        assert {d.rsplit("::", 1)[1] for d in r.get("dependencies", [])} >= {"vm2-ssh-ready", "vm2-policies"}, r["urn"]


def test_up_applied_the_policies_and_compliance_is_green(stack: Stack) -> None:
    outs = stack.outputs()
    compliance = outs["compliance"]
    assert compliance["failed"] == 0 and compliance["errors"] == 0, compliance["failures"]
    assert compliance["passed"] == _declared_checks(stack) >= 30
    assert compliance["waived"] == 0 and compliance["score"] == 100.0 and compliance["notes"] == []
    # the reports of the engine's run: JUnit at report_path, SARIF beside it, both every check passing
    report = stack.project.dir / "reports" / f"{stack.project.stack}-compliance.xml"
    assert compliance["report"] == str(report) and compliance["sarif"] == str(report.with_suffix(".sarif"))
    statuses = junit_statuses(report)
    assert statuses[("vm1", "slice:web.slice::memory.max")] == "pass"
    assert len(statuses) == compliance["passed"] and set(statuses.values()) == {"pass"}, statuses
    results = _sarif_results(Path(compliance["sarif"]))
    assert len(results) == compliance["passed"] and {r["kind"] for r in results.values()} == {"pass"}
    assert {host for host, _ in results} == {"vm1", "vm2"}
    # each node's policies component: the policies it applied, what the run changed and kept
    assert outs["policies"]["vm1"]["changed"] == 1 and outs["policies"]["vm2"]["changed"] == 1
    subjects = {c.subject for c in expectations(from_manifest(json.loads(outs["manifest"])), {"vm1"})}
    assert set(outs["policies"]["vm1"]["policies"]) == subjects and "slice:web.slice" in subjects
    assert outs["policies"]["vm2"]["policies"] == ["host:kvm"]
    assert outs["policies"]["vm1"]["kept"] == [] and outs["policies"]["vm1"]["drift"] == []
    # observable state, read here directly
    vm1 = stack.guest("vm1")
    assert vm1.ssh("cat /sys/fs/cgroup/web.slice/memory.max") == "536870912"
    assert "ringzero-demo-enforce (enforce)" in vm1.ssh("cat /sys/kernel/security/apparmor/profiles")


def test_the_demo_workload_is_confined_by_every_kind(stack: Stack) -> None:
    """The reference stack's ConfinedServiceSpec on vm1, seen on the running workload: its slice,
    the AppArmor profile it runs under, its seccomp filter, its private namespaces, its read-only
    view, the Landlock launcher's ruleset, its cgroup eBPF filter, and the node's nftables table."""
    vm1, unit = stack.guest("vm1"), "ringzero-demo-web.service"
    pid = vm1.ssh(f"systemctl show -p MainPID --value {unit}")
    assert pid != "0", vm1.ssh(f"systemctl status {unit} || true")
    assert vm1.ssh(f"cat /proc/{pid}/cgroup") == f"0::/web.slice/{unit}"
    assert vm1.ssh(f"cat /proc/{pid}/attr/current") == "ringzero-demo-web (enforce)"
    assert re.search(r"^Seccomp:\s+2$", vm1.ssh(f"cat /proc/{pid}/status"), re.M)
    ns = {t: vm1.ssh(f"readlink /proc/{pid}/ns/{t} /proc/1/ns/{t}").split() for t in
          ("net", "ipc", "uts", "mnt", "pid", "user", "cgroup")}
    assert {t for t, (mine, init) in ns.items() if mine != init} == {"net", "ipc", "uts", "mnt"}, ns
    assert vm1.ssh(f"nsenter -t {pid} -m findmnt -no OPTIONS -T /usr").startswith("ro,")  # ProtectSystem=strict
    # hidden: InaccessiblePaths= mounts an empty, mode-0 node over /home in its namespace only
    assert vm1.ssh(f"nsenter -t {pid} -m findmnt -no TARGET --mountpoint /home") == "/home"
    assert vm1.ssh(f"nsenter -t {pid} -m stat -c %a /home") == "0"
    assert vm1.ssh("findmnt -no TARGET --mountpoint /home || true") == ""
    environ = vm1.ssh(f"tr '\\0' '\\n' < /proc/{pid}/environ").splitlines()
    assert any(line.startswith("RINGZERO_LANDLOCK=demo-web ") for line in environ), environ
    assert vm1.ssh(f"systemctl show -P IPAddressDeny {unit}") != ""
    assert "table inet ringzero_demo" in vm1.ssh("nft list tables")
    policies = stack.outputs()["policies"]["vm1"]
    assert 0 < policies["exposure"][unit] <= 8.0, policies["exposure"]
    # Debian 12's kernel has Landlock ABI 2: best_effort reports what it could not enforce
    assert policies["landlock_dropped"] == ["Landlock 'demo-web' (best_effort): the node's Landlock ABI is 2; "
                                            "dropped truncate (ABI 3), ioctl_dev (ABI 5)"]


def test_no_secret_on_disk_after_up(stack: Stack) -> None:
    """The access key and the passphrase exist in plain text nowhere: state (secrets are
    ciphertext there), logs, ansible-runner's artifacts, caches, temp dirs; and the key
    directory earlier versions wrote for the remote host's provider is not there (its key is in
    the provider's secret URI in the state)."""
    needles = secret_needles(stack)
    assert _gone_within(key_dir("ringzero", stack.project.stack), 10)
    assert find_secrets(stack, needles, texts=stack.logs) == []


def test_ringzero_manifest_of_the_stack_then_check_from_it(stack: Stack) -> None:
    """`ringzero manifest --stack` reads the deployed stack; `ringzero check` proves it with no stack."""
    cli = [sys.executable, "-m", "ringzero.cli"]
    res = subprocess.run([*cli, "manifest", "--stack", stack.project.stack], cwd=stack.project.dir,
                         env=stack.project.env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    outs = stack.outputs()
    assert json.loads(res.stdout) == json.loads(outs["manifest"])
    manifest = stack.workdir / "from-stack.json"
    manifest.write_text(res.stdout)
    vm1 = stack.guest("vm1")
    hosts = ",".join(f"{n}=ssh://root@127.0.0.1:{outs['vms'][n]['ssh_port']}" for n in ("vm1", "vm2"))
    res = subprocess.run([*cli, "check", "--manifest", str(manifest), "--hosts", hosts, "-i", str(vm1.key_file),
                          "--known-hosts", str(vm1.known_hosts), "-q"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    n = _declared_checks(stack)
    assert f"score 100% ({n}/{n} judged checks pass) on 2 host(s)" in res.stdout, res.stdout


@pytest.mark.parametrize("name", ["vm1", "vm2"])
def test_guest_sees_its_declared_resources(stack: Stack, name: str) -> None:
    spec = next(v for v in _vms(stack) if v["name"] == name)
    guest = stack.guest(name)
    assert guest.ssh("hostname") == name
    assert int(guest.ssh("nproc")) == spec["vcpus"]
    mem_kib = _mem_total_kib(guest)
    # the kernel reserves some memory for itself: MemTotal is a little below what was declared
    assert 0.80 * spec["memory_mib"] * 1024 < mem_kib <= spec["memory_mib"] * 1024  # type: ignore[operator]
    assert guest.ssh("cloud-init status") .startswith("status: done")


def test_remote_host_defines_its_domain_inside_the_guest(stack: Stack) -> None:
    """Host vm2-libvirt (qemu+ssh to vm2's libvirtd) put nested1 there, not on this machine."""
    inside = stack.guest("vm2").ssh("virsh -q -c qemu:///system list --all --name")
    assert "nested1" in inside.split()
    assert "blank.qcow2" in stack.guest("vm2").ssh("virsh -q -c qemu:///system vol-list default")
    assert "nested1" not in virsh("list", "--all", "--name").split()


def test_lifecycle_reaches_the_remote_host_with_its_own_inputs(stack: Stack) -> None:
    """GuestLifecycle reaches vm2's libvirtd with the key and pinned host key of its own inputs
    (what plain `pulumi destroy` has); a failure to reach the host is an error naming the VM,
    never read as "not running"."""
    outs = stack.outputs()
    props = {"host_uri": f"qemu+ssh://root@127.0.0.1:{outs['vms']['vm2']['ssh_port']}/system",
             "private_key": outs["access_private_key"], "known_hosts": outs["vms"]["vm2"]["known_hosts"],
             "domain": "nested1", "shutdown_timeout_s": 30}
    with connected(props) as uri:
        assert domain_state(uri, "nested1") == "shut off"
        assert domain_state(uri, "no-such-domain") is None
    # another host key pinned for vm2's endpoint: ssh refuses, and the delete says so
    other = outs["vms"]["vm1"]["known_hosts"].split(" ", 1)[1]
    wrong = {**props, "known_hosts": f"[127.0.0.1]:{outs['vms']['vm2']['ssh_port']} {other}"}
    with pytest.raises(RuntimeError, match=r"VirtualMachine 'nested1': cannot shut it down .*virsh domstate"):
        GuestLifecycleProvider().delete("nested1", wrong)


def test_host_key_is_pinned(stack: Stack) -> None:
    """A known_hosts with another key for the same endpoint makes SSH refuse the guest."""
    guest = stack.guest("vm1")
    other = stack.outputs()["vms"]["vm2"]["known_hosts"].split(" ", 1)[1]
    guest.known_hosts.write_text(f"[127.0.0.1]:{guest.port} {other}\n")
    res = guest.run("true")
    assert res.returncode != 0 and "Host key verification failed" in res.stderr, res.stderr
    stack.guest("vm1").ssh("true")  # the right key works again


def test_noop_up_changes_nothing(stack: Stack) -> None:
    preview = stack.project.pulumi("preview", "--expect-no-changes", "--json")
    assert {s["op"] for s in json.loads(preview.stdout)["steps"]} == {"same"}


def test_noop_up_runs_no_ansible_and_opens_no_ssh(stack: Stack) -> None:
    vm1, vm2 = stack.guest("vm1"), stack.guest("vm2")
    runs_before = [vm1.ansible_runs(), vm2.ansible_runs()]
    logins_before = [vm1.ssh_logins(), vm2.ssh_logins()]
    stack.project.pulumi("up", "--yes", "--expect-no-changes", timeout=600)
    # neither guest saw an SSH login but this count's own: not vm1, and not vm2, the remote
    # libvirt host (our build of the provider connects when an operation needs libvirt, and a
    # no-op's Check and Diff never do)
    assert [vm1.ssh_logins(), vm2.ssh_logins()] == [n + 1 for n in logins_before]
    assert [vm1.ansible_runs(), vm2.ansible_runs()] == runs_before


def test_drift_shows_in_refresh_and_up_repairs_it(stack: Stack) -> None:
    vm1 = stack.guest("vm1")
    vm1.ssh("apparmor_parser -R /etc/apparmor.d/ringzero-demo-enforce && systemctl set-property web.slice MemoryMax=1G")
    # no program run: the provider of vm2-libvirt is configured from the state (its secret URI,
    # with the key in it); its debug log names the URI with the key redacted
    res = stack.project.pulumi("refresh", "--yes", "--debug", timeout=900)
    assert "Configuring provider for 'qemu+ssh://root@127.0.0.1:" in res.stdout + res.stderr
    assert "keydata=REDACTED" in res.stdout + res.stderr
    # nor the guests' host keys, which pulumi-libvirt logged with the seed's user data it read
    # back (our build logs the seed's name only)
    needles = {**secret_needles(stack), **host_key_needles(stack)}
    assert find_secrets(stack, needles, texts={"refresh --debug": res.stdout + res.stderr}) == []
    drift = _resource_outputs(stack, "vm1-policies")["drift"]
    assert any(d.startswith("apparmor ringzero-demo-enforce") for d in drift), drift
    assert any("web.slice drift: MemoryMax=1073741824" in d for d in drift), drift
    assert _resource_outputs(stack, "vm2-policies")["drift"] == []
    checked = _resource_outputs(stack, "compliance")
    assert sorted(f.split(": ", 1)[0] for f in checked["failures"]) == sorted(DRIFTED), checked["failures"]
    assert checked["failed"] == len(DRIFTED) and checked["errors"] == 0
    # refresh rewrote the reports: the SARIF names exactly the drifted checks as failures
    failed = {f"{host}::{rule}" for (host, rule), r in _sarif_results(Path(checked["sarif_path"])).items()
              if r["kind"] == "fail"}
    assert failed == DRIFTED, failed
    # `pulumi up` applies vm1's plan again, then the compliance check runs again
    stack.project.pulumi("up", "--yes", timeout=900)
    outs = stack.outputs()
    assert outs["compliance"]["failed"] == 0 and outs["compliance"]["passed"] == _declared_checks(stack)
    assert vm1.ssh("cat /sys/fs/cgroup/web.slice/memory.max") == "536870912"
    stack.project.pulumi("preview", "--expect-no-changes", timeout=600)


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, start time, command line) of every process."""
    out: dict[int, tuple[int, str, str]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        out[int(d)] = (int(fields[1]), fields[19], cmd)
    return out


def _tree(root: int) -> dict[int, tuple[int, str, str]]:
    procs = _processes()
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _, _) in procs.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return {pid: procs[pid] for pid in tree if pid in procs}


def _gone_within(path: Path, seconds: float) -> bool:
    """True once `path` does not exist; a program may still be exiting when `pulumi` returns."""
    deadline = time.monotonic() + seconds
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return not path.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_killed_up_leaves_no_secret_and_a_rerun_recovers(stack: Stack) -> None:
    """SIGKILL of `pulumi up` while Ansible applies vm1's plan; then `pulumi cancel` and a re-run."""
    needles = secret_needles(stack)
    web = stack.config["ringzero:nodes"][0]["confined"][0]["slice"]  # the demo workload's slice
    assert web["name"] == "web.slice", web
    web["memory_max"] = "640M"  # an apply on vm1: its PlaybookRun updates
    stack.write_config()
    tmp = Path(tempfile.gettempdir())
    log = stack.workdir / "killed-up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["pulumi", "up", "--yes", "--stack", stack.project.stack, "--non-interactive"],
                                cwd=stack.project.dir, env=stack.project.env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 900
    worker_dir = None
    while worker_dir is None:  # until Ansible runs for this `pulumi up`: its worker's directory exists
        assert proc.poll() is None, f"pulumi up ended before Ansible ran:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "no ansible-runner worker within 900 s"
        tree = _tree(proc.pid)
        worker_dir = next((d for d in tmp.glob("ringzero-ansible-*")
                           if d.name.removeprefix("ringzero-ansible-").split(".")[0] in {str(p) for p in tree}), None)
        time.sleep(0.2)
    tree = _tree(proc.pid)
    assert not key_dir("ringzero", stack.project.stack).exists()  # vm2-libvirt's key is in its secret URI
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Pulumi's plugins (language host, providers) run in process groups of their own and
    # outlive a killed CLI: end them as a user or CI runner cleaning up would (SIGTERM). The
    # ansible-runner worker removes its directory on SIGTERM or when its parent dies.
    leftovers = {pid: start for pid, (_, start, cmd) in tree.items() if pid != proc.pid}
    workers = {pid for pid, (_, _, cmd) in tree.items() if "ringzero.playbook" in cmd}
    assert workers, "no ansible-runner worker in the killed run's processes"

    def running(pids: set[int] | dict[int, str]) -> list[int]:
        return [p for p in pids if keyfiles.proc_start_time(p) == tree[p][1]]

    for pid in running(leftovers):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while running(leftovers) and time.monotonic() < deadline:
        time.sleep(0.5)
    # Pulumi's own processes that ignore SIGTERM get SIGKILL; the worker must have gone on SIGTERM.
    assert running(workers) == [], [tree[p][2][:150] for p in running(workers)]
    for pid in running(leftovers):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    assert not worker_dir.exists()
    assert _gone_within(key_dir("ringzero", stack.project.stack), 10)
    assert find_secrets(stack, needles, texts={"the killed pulumi up's output": log.read_text()}) == []

    # Recovery: the killed CLI left its lock; `pulumi cancel` removes it.
    res = stack.project.pulumi("up", "--yes", check=False, timeout=600)
    assert res.returncode != 0 and "the stack is currently locked" in res.stdout + res.stderr, res.stdout + res.stderr
    stack.project.pulumi("cancel", "--yes")
    pending = json.loads(stack.project.pulumi("stack", "export").stdout)["deployment"].get("pending_operations") or []
    assert {op["resource"]["urn"].rsplit("::", 1)[1] for op in pending} >= {"vm1-policies"}, pending
    if any(op["type"] == "creating" for op in pending):  # none expected here; this is the recovery
        stack.project.pulumi("refresh", "--yes", "--clear-pending-creates", timeout=900)
    # What a SIGKILL of everything would leave (no cleanup can run): a worker's directory and
    # the provider's key directory, both of dead owners. The next run removes them.
    dead = _dead_pid()
    stale_worker = tmp / f"ringzero-ansible-{dead}.1-e2e"
    stale_worker.mkdir(mode=0o700)
    keyfiles.write_key(stale_worker / "key", stack.outputs()["access_private_key"])
    stale_keys = key_dir("ringzero", stack.project.stack)
    stale_keys.parent.mkdir(mode=0o700, exist_ok=True)  # as such a version made it; none does now
    stale_keys.mkdir(mode=0o700)
    keyfiles.write_secret(stale_keys / "owner", f"{dead}.1")
    keyfiles.write_key(stale_keys / "access", stack.outputs()["access_private_key"])
    res = stack.project.pulumi("up", "--yes", timeout=900)
    assert "pending operations from previous deployment" in res.stdout + res.stderr
    assert stack.guest("vm1").ssh("cat /sys/fs/cgroup/web.slice/memory.max") == str(640 * 1024 * 1024)
    assert stack.outputs()["compliance"]["failed"] == 0
    assert not stale_worker.exists() and not stale_keys.exists()
    assert find_secrets(stack, needles, texts={"the re-run's output": res.stdout + res.stderr}) == []


def _identity(guest: Guest) -> dict[str, str]:
    """What must not change when a VM is resized: its domain, its disk, its NIC as the guest sees it."""
    return {"uuid": virsh("domuuid", "vm1").strip(), "disk": virsh("vol-key", "--pool", "default", "vm1.qcow2").strip(),
            "mac": guest.ssh("cat /sys/class/net/$(ls /sys/class/net | grep -v '^lo$' | head -n 1)/address")}


def _resize_preview(stack: Stack, memory_mib: int, vcpus: int) -> dict[str, Any]:
    """Declare vm1's new size; the preview's steps must update vm1's lifecycle and replace nothing."""
    vm1 = next(v for v in stack.config["ringzero:vms"] if v["name"] == "vm1")
    vm1["memory_mib"], vm1["vcpus"] = memory_mib, vcpus
    stack.write_config()
    steps = json.loads(stack.project.pulumi("preview", "--json").stdout)["steps"]
    ops = {s["urn"].rsplit("::", 1)[1]: s["op"] for s in steps if s["op"] != "same"}
    assert ops.get("vm1-lifecycle") == "update", ops
    assert not [n for n, op in ops.items() if op in ("replace", "create-replacement", "delete-replaced", "delete")], ops
    step = next(s for s in steps if s["urn"].endswith("::vm1-lifecycle"))
    return dict(step["newState"]["inputs"])


def _mem_total_settles(guest: Guest, below_kib: int, seconds: float = 120) -> int:
    """MemTotal once the balloon has taken what was asked (it shrinks over a few seconds)."""
    deadline = time.monotonic() + seconds
    while (kib := _mem_total_kib(guest)) > below_kib and time.monotonic() < deadline:
        time.sleep(2)
    return kib


def test_memory_lowered_within_the_maximum_is_live_in_the_same_domain(stack: Stack) -> None:
    guest = stack.guest("vm1")
    guest.ssh("echo kept > /root/ringzero-marker && sync")
    before, boot_before, mem_before = _identity(guest), guest.ssh("cat /proc/sys/kernel/random/boot_id"), \
        _mem_total_kib(guest)
    planned = _resize_preview(stack, 768, 1)
    assert planned["guest_restart"].startswith("not required: memory within the domain's maximum of 1024 MiB"), planned
    stack.project.pulumi("up", "--yes", timeout=900)
    assert guest.ssh("cat /proc/sys/kernel/random/boot_id") == boot_before  # no restart
    assert _identity(guest) == before
    # the balloon took 256 MiB from the running guest; the definition says the same
    assert _mem_total_settles(guest, mem_before - 200 * 1024) <= mem_before - 200 * 1024
    assert "<currentMemory unit='KiB'>786432</currentMemory>" in virsh("dumpxml", "--inactive", "vm1")
    assert "<memory unit='KiB'>1048576</memory>" in virsh("dumpxml", "--inactive", "vm1")
    stack.project.pulumi("preview", "--expect-no-changes")


def test_memory_and_vcpus_raised_restart_the_same_domain_cleanly(stack: Stack) -> None:
    guest = stack.guest("vm1")
    # a unit whose ExecStop only runs when systemd shuts the guest down (never on power-off)
    guest.ssh(
        "cat > /etc/systemd/system/rz-shutdown-marker.service && systemctl daemon-reload"
        " && systemctl enable --now rz-shutdown-marker.service",
        stdin=SHUTDOWN_MARKER_UNIT,
    )
    before, boot_before = _identity(guest), guest.ssh("cat /proc/sys/kernel/random/boot_id")
    planned = _resize_preview(stack, 1280, 2)
    assert planned["guest_restart"] == ("required: memory 1280 MiB is above the domain's maximum of 1024 MiB; "
                                        "vCPUs 1 -> 2 (libvirt hot-plugs only vCPUs defined hot-pluggable)"), planned
    stack.project.pulumi("up", "--yes", timeout=900)
    guest = stack.guest("vm1")
    assert guest.ssh("cat /proc/sys/kernel/random/boot_id") != boot_before
    assert _identity(guest) == before  # the same domain (UUID), disk and NIC
    assert guest.ssh("cat /root/ringzero-marker") == "kept"
    # the guest went down through ACPI and systemd (a clean shutdown), not a power cut
    assert guest.ssh("cat /root/ringzero-shutdown") == "clean"
    assert int(guest.ssh("nproc")) == 2 and _mem_total_kib(guest) > 1100 * 1024
    assert _resource_outputs(stack, "vm1-lifecycle")["restarts"] == 1
    stack.project.pulumi("preview", "--expect-no-changes")
    # the policies live on the disk and in enabled units: after the restart all checks pass
    counts = _suite_on_guests(stack, "after-restart.xml")
    assert counts.failed == counts.errors == 0, counts.failures


def test_removing_the_policies_leaves_the_guests_clean(stack: Stack) -> None:
    declared = from_manifest(json.loads(stack.outputs()["manifest"]))
    stack.config["ringzero:nodes"] = []
    stack.write_config()
    stack.project.pulumi("up", "--yes", timeout=900)
    vm1, vm2 = stack.guest("vm1"), stack.guest("vm2")
    assert vm1.ssh(leftovers_script(declared, "vm1")) == ""
    assert vm2.ssh(leftovers_script(declared, "vm2")) == ""
    assert "ringzero-demo" not in vm1.ssh("cat /sys/kernel/security/apparmor/profiles")
    assert vm1.ssh("ls /sys/fs/cgroup | grep -E '^(web|batch)' || true") == ""
    assert "ringzero" not in vm1.ssh("nft list tables")  # the demo's table gone, no other touched
    # the image's own packages stay: removing host preparation never uninstalls anything
    assert vm2.ssh("dpkg-query -W -f '${db:Status-Status}' libvirt-daemon-system") == "installed"
    assert stack.outputs().get("compliance") is None  # no policies: no ComplianceCheck


def test_plain_destroy_shuts_down_cleanly_removes_ours_and_keeps_handmade(stack: Stack) -> None:
    """`pulumi destroy` as a library user runs it: no --run-program, no program at all."""
    needles = secret_needles(stack)
    console = Path(stack.outputs()["vms"]["vm1"]["console_log"])
    marker = "ringzero-e2e: clean shutdown"
    shutdowns_before = console.read_text(errors="replace").count(marker)
    res = stack.project.pulumi("destroy", "--yes", timeout=900)
    assert "--run-program" not in res.stdout + res.stderr
    # vm1's ExecStop ran (it writes to the serial console, whose log stays on this machine)
    assert console.read_text(errors="replace").count(marker) == shutdowns_before + 1
    assert _gone_within(key_dir("ringzero", stack.project.stack), 10)
    assert find_secrets(stack, needles, texts={"pulumi destroy's output": res.stdout + res.stderr}) == []
    domains = virsh("list", "--all", "--name").split()
    volumes = virsh("vol-list", "default")
    for name in ("vm1", "vm2"):
        assert name not in domains
        assert f"{name}.qcow2" not in volumes and f"{name}-seed.iso" not in volumes
    assert "debian-12.qcow2" not in volumes
    assert HANDMADE_DOMAIN in domains and HANDMADE_VOLUME in volumes
    virsh("undefine", HANDMADE_DOMAIN)
    virsh("vol-delete", "--pool", "default", HANDMADE_VOLUME)
    assert URI
