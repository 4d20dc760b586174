"""Namespaces and filesystem views on a real guest (Debian 12, systemd 252, kernel 6.1).

Three services: `rzsb-ns` with every namespace but user private (pid and cgroup through the
`unshare` launcher), `rzsb-net` with only net private and no namespace creation allowed, and
`rzsb-fs` with a filesystem view (read-only system, a writable path, a hidden one, read-only
and read-write binds, an overlay). Proven by what the node shows, not by our checks alone:
/proc/<pid>/ns against PID 1 and lsns, `unshare` refused under the unit's
RestrictNamespaces=, findmnt in the workload's mount namespace and the effect of writes
(EROFS, a hidden file absent, an overlay write in the upper directory only). Then every
check's negative control (a mutation of exactly its thing), idempotence, and removal leaving
nothing of ours. Tests run in file order; the module leaves the guest as it found it.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ringzero.checks import Check, Probe
from ringzero.checks.run import judge
from ringzero.facts import covering_mount, findmnt_mounts, lsns_namespaces, proc_ns
from ringzero.kinds.fsview.checks import checks as fsview_checks
from ringzero.kinds.fsview.expect import directives, mount_unit, overlay_dirs
from ringzero.kinds.namespaces.checks import checks as ns_checks
from ringzero.kinds.namespaces.expect import NAMESPACES
from ringzero.plan import policies_plan
from ringzero.playbook import RunResult, run_playbook
from ringzero.spec import (
    FilesystemViewSpec,
    HostSpec,
    NamespacesSpec,
    NodePolicies,
    OverlaySpec,
    ServiceSpec,
)
from tests.handboot import GuestHost, HandGuest

NODE = "vm1"
SLEEP = "/usr/bin/sleep infinity"
NS = NamespacesSpec("rzsb-ns", ("rzsb-ns.service",), private=("pid", "cgroup", "mnt", "net", "ipc", "uts"),
                    may_create=("cgroup", "mnt", "pid"))
NET = NamespacesSpec("rzsb-net", ("rzsb-net.service",), private=("net",), may_create=())
LOWER = "/opt/rzsb-lower"
VIEW = FilesystemViewSpec(
    "rzsb-view", ("rzsb-fs.service",), read_only_system=True, writable=("/var/lib/rzsb-w",),
    hidden=("/srv/rzsb-secret",), bind_read_only=("/srv/rzsb-src:/srv/rzsb-ro",), bind_read_write=("/srv/rzsb-rw",),
    overlay=OverlaySpec("/srv/rzsb-app", (LOWER,)))
POLICIES = NodePolicies(NODE, services=tuple(ServiceSpec(f"rzsb-{n}.service", SLEEP) for n in ("ns", "net", "fs")),
                        namespaces=(NS, NET), fsviews=(VIEW,))
PLAN = policies_plan(POLICIES, HostSpec(NODE))
DIRS = overlay_dirs(VIEW)
# What the test itself puts on the guest (the view's paths, and a short stop timeout for the
# pid-namespaced service: `sleep` as PID 1 of its namespace ignores the SIGTERM systemd sends,
# so each stop would otherwise wait TimeoutStopSec=, 90 s, for SIGKILL), removed at the end.
STOP = "/etc/systemd/system/rzsb-ns.service.d/zz-rzsb-stop.conf"
PREPARE = ("mkdir -p /etc/systemd/system/rzsb-ns.service.d && "
           f"printf '[Service]\\nTimeoutStopSec=3s\\n' > {STOP} && systemctl daemon-reload && "
           f"mkdir -p {LOWER} /var/lib/rzsb-w /srv/rzsb-secret /srv/rzsb-src /srv/rzsb-ro /srv/rzsb-rw "
           f"/srv/rzsb-app && echo base > {LOWER}/base.txt && echo secret > /srv/rzsb-secret/s.txt "
           "&& echo src > /srv/rzsb-src/f.txt")
CLEANUP = ("rm -f /etc/systemd/system/rzsb-*.service.d/zz-rzsb-mutation.conf; "
           f"rm -f {STOP}; rmdir /etc/systemd/system/rzsb-ns.service.d; "
           f"rm -rf {LOWER} /var/lib/rzsb-w /srv/rzsb-secret /srv/rzsb-src /srv/rzsb-ro /srv/rzsb-rw /srv/rzsb-app "
           f"/usr/local/bin/lsns '/etc/systemd/system/{mount_unit(VIEW)}.d'; systemctl daemon-reload")




@dataclass
class Sandbox:
    guest: HandGuest

    def apply(self, state: str = "present") -> RunResult:
        conn = {**self.guest.node, "name": NODE}
        r = run_playbook(conn, self.guest.private_key, {"ringzero_plan": PLAN, "ringzero_state": state})
        assert r.ok, f"site.yml {state}: {r.failures}"
        return r

    def sh(self, command: str) -> subprocess.CompletedProcess[str]:
        return self.guest.run(f"timeout 60 sh -c {shlex.quote(command)}", timeout=120)

    def out(self, command: str) -> str:
        res = self.sh(command)
        assert res.returncode == 0, f"{command}: rc={res.returncode} {res.stderr}"
        return res.stdout.strip()

    def verdicts(self) -> dict[str, str]:
        checks: list[Check] = ns_checks(NODE, NS) + ns_checks(NODE, NET) + fsview_checks(NODE, VIEW)
        probe = Probe(GuestHost(self.guest), NODE)
        probe.fetch([k for c in checks for k in c.reads])
        return {c.aspect: judge(c, probe, {}, {})[0] for c in checks}

    def workload(self, service: str, forked: bool) -> int:
        pid = self.out(f"m=$(systemctl show -p MainPID --value {service}); "
                       + ("cut -d' ' -f1 /proc/$m/task/$m/children" if forked else "echo $m"))
        assert pid.isdigit() and pid != "0", f"{service}: no workload ({pid!r})"
        return int(pid)

    def mutate(self, service: str, dropin: str) -> None:
        """A drop-in ringzero did not write, then the service restarted on it."""
        path = f"/etc/systemd/system/{service}.d/zz-rzsb-mutation.conf"
        self.out(f"printf '%s\\n' {shlex.quote(dropin)} > {path} && systemctl daemon-reload && "
                 f"systemctl restart {service}")

    def restore(self, service: str) -> None:
        self.out(f"rm -f /etc/systemd/system/{service}.d/zz-rzsb-mutation.conf && systemctl daemon-reload && "
                 f"systemctl restart {service}")


@pytest.fixture(scope="module")
def box(shared_guest: HandGuest) -> Iterator[Sandbox]:
    with contextlib.nullcontext(shared_guest) as guest:  # the tier's shared guest
        sb = Sandbox(guest)
        sb.out(PREPARE)
        try:
            yield sb
        finally:
            sb.apply("absent")
            sb.sh(CLEANUP)


def test_apply_converges_then_changes_nothing(box: Sandbox) -> None:
    first = box.apply()
    assert first.changed > 0
    again = box.apply()
    assert again.changed == 0, again.changes


def test_every_check_passes_on_the_converged_node(box: Sandbox) -> None:
    verdicts = box.verdicts()
    assert verdicts and set(verdicts.values()) == {"pass"}, {k: v for k, v in verdicts.items() if v != "pass"}


@pytest.mark.parametrize(("service", "spec"), [("rzsb-ns.service", NS), ("rzsb-net.service", NET)])
def test_private_namespaces_differ_from_pid1_the_others_equal_and_lsns_agrees(
        box: Sandbox, service: str, spec: NamespacesSpec) -> None:
    forked = "pid" in spec.private
    pid = box.workload(service, forked)
    seen = proc_ns(box.out(f"for t in {' '.join(NAMESPACES)}; do echo \"1 $(readlink /proc/1/ns/$t)\"; "
                           f"echo \"{pid} $(readlink /proc/{pid}/ns/$t)\"; done"))
    for ns in NAMESPACES:
        if ns in spec.private:
            assert seen[pid][ns] != seen[1][ns], f"{service}: {ns} declared private, shared with PID 1"
        else:
            assert seen[pid][ns] == seen[1][ns], f"{service}: {ns} not declared private, differs from PID 1"
    listed = lsns_namespaces(box.out(f"lsns -J -p {pid} -o NS,TYPE,PID"))
    assert {t: listed.get(t) for t in NAMESPACES} == seen[pid]  # lsns lists the time namespace too
    if forked:  # the launcher: the workload is pid 1 of its own pid namespace, unshare is not in it
        assert box.out(f"grep NSpid /proc/{pid}/status").split()[-1] == "1"
        main = box.out(f"systemctl show -p MainPID --value {service}")
        assert box.out(f"readlink /proc/{main}/ns/pid") == box.out("readlink /proc/1/ns/pid")


def test_a_workload_refused_restrict_namespaces_fails_to_unshare(box: Sandbox) -> None:
    shown = box.out("systemctl show -p RestrictNamespaces --value rzsb-net.service")
    assert shown == "yes"  # none allowed
    base = "systemd-run --quiet --wait --pipe --collect -p RuntimeMaxSec=20 -p PrivateNetwork=yes"
    for flag in ("--user", "--net", "--uts"):
        refused = box.sh(f"{base} -p RestrictNamespaces=yes /usr/bin/unshare {flag} /bin/true")
        assert refused.returncode != 0 and "Operation not permitted" in refused.stdout + refused.stderr, flag
        assert box.sh(f"{base} /usr/bin/unshare {flag} /bin/true").returncode == 0, flag
    # the launched service: its unshare ran under RestrictNamespaces=cgroup mnt pid; the workload
    # itself may create those and no other
    pid = box.workload("rzsb-ns.service", True)
    assert box.out(f"grep -c '^Seccomp:.2' /proc/{pid}/status") == "1"


def _view(box: Sandbox) -> tuple[int, list[Any]]:
    pid = box.workload("rzsb-fs.service", False)
    return pid, findmnt_mounts(box.out(f"nsenter -t {pid} -m findmnt -J --list -o TARGET,SOURCE,FSTYPE,OPTIONS,FSROOT"))


def test_the_view_by_findmnt_in_the_workloads_mount_namespace(box: Sandbox) -> None:
    _, mounts = _view(box)
    for path in ("/usr", "/etc"):
        assert "ro" in covering_mount(mounts, path).options  # type: ignore[union-attr]
    assert "rw" in covering_mount(mounts, "/var/lib/rzsb-w").options  # type: ignore[union-attr]
    ro = covering_mount(mounts, "/srv/rzsb-ro")
    assert ro is not None and ro.target == "/srv/rzsb-ro" and "ro" in ro.options
    ov = covering_mount(mounts, "/srv/rzsb-app")
    assert ov is not None and ov.target == "/srv/rzsb-app" and ov.fstype == "overlay"
    assert ov.option("lowerdir") == LOWER and ov.option("upperdir") == DIRS.upper
    # the host's own view is untouched: no overlay and no bind at those paths
    host = findmnt_mounts(box.out("findmnt -J --list -o TARGET,SOURCE,FSTYPE,OPTIONS,FSROOT"))
    assert not [m for m in host if m.target.startswith("/srv/rzsb")]


def test_the_view_by_effect(box: Sandbox) -> None:
    pid, _ = _view(box)
    ns = f"nsenter -t {pid} -m"
    for path in ("/usr/rzsb-probe", "/etc/rzsb-probe", "/srv/rzsb-ro/new.txt"):
        res = box.sh(f"{ns} sh -c 'echo x > {path}'")
        assert res.returncode != 0 and "Read-only file system" in res.stderr, (path, res.stderr)
        assert box.sh(f"test -e {path}").returncode != 0
    assert box.out(f"{ns} cat /srv/rzsb-ro/f.txt") == "src"
    assert box.out(f"{ns} ls -A /srv/rzsb-secret") == ""  # the host's s.txt is not there
    box.out(f"{ns} sh -c 'echo w > /var/lib/rzsb-w/w.txt && echo rw > /srv/rzsb-rw/rw.txt'")
    assert box.out("cat /var/lib/rzsb-w/w.txt /srv/rzsb-rw/rw.txt").split() == ["w", "rw"]
    box.out(f"{ns} sh -c 'echo new > /srv/rzsb-app/new.txt && echo changed > /srv/rzsb-app/base.txt'")
    assert box.out(f"cat {DIRS.upper}/new.txt {DIRS.upper}/base.txt").split() == ["new", "changed"]
    assert box.out(f"ls -A {LOWER}; cat {LOWER}/base.txt").split() == ["base.txt", "base"]
    assert box.out("ls -A /srv/rzsb-app") == ""  # the host's target directory is not written either


# A mutation of the node per check: the drop-in (service, text) or a command, and the one check it fails.
NS_SVC, FS_SVC = "rzsb-ns.service", "rzsb-fs.service"
MUTATIONS: list[tuple[str, str, str, str]] = [
    # (check aspect, service to mutate, drop-in text or "!command", what it does)
    (f"{NS_SVC}:ns:net", NS_SVC, "[Service]\nPrivateNetwork=no", "net shared again"),
    (f"{NS_SVC}:ns:ipc", NS_SVC, "[Service]\nPrivateIPC=no", "ipc shared again"),
    (f"{NS_SVC}:ns:uts", NS_SVC, "[Service]\nProtectHostname=no", "uts shared again"),
    (f"{NS_SVC}:ns:user", NS_SVC, "[Service]\nPrivateUsers=yes", "a user namespace not declared"),
    (f"{NS_SVC}:ns:pid", NS_SVC, "[Service]\nExecStart=\nExecStart=/usr/bin/unshare --fork --kill-child "
     "--mount-proc --cgroup -- /usr/bin/sleep infinity", "the launcher without --pid"),
    (f"{NS_SVC}:ns:cgroup", NS_SVC, "[Service]\nExecStart=\nExecStart=/usr/bin/unshare --pid --fork --kill-child "
     "--mount-proc -- /usr/bin/sleep infinity", "the launcher without --cgroup"),
    ("rzsb-net.service:ns:mnt", "rzsb-net.service", "[Service]\nPrivateMounts=yes", "a mount namespace not declared"),
    ("rzsb-net.service:RestrictNamespaces", "rzsb-net.service", "[Service]\nRestrictNamespaces=", "unrestricted"),
    (f"{FS_SVC}:read-only:/usr", FS_SVC, "[Service]\nReadWritePaths=/usr", "/usr writable"),
    (f"{FS_SVC}:writable:/var/lib/rzsb-w", FS_SVC, "[Service]\nTemporaryFileSystem=/var/lib/rzsb-w:ro",
     "a read-only tmpfs over the writable path"),
    (f"{FS_SVC}:hidden:/srv/rzsb-secret", FS_SVC, "[Service]\nInaccessiblePaths=", "nothing hidden"),
    # An empty BindReadOnlyPaths= resets every bind, BindPaths= ones (the overlay's too) included:
    # the view's other binds are declared again, so only the read-only one is gone. (A second
    # read-only bind at the same place is no mutation: systemd keeps the first.)
    (f"{FS_SVC}:bind:/srv/rzsb-ro", FS_SVC, "[Service]\nBindReadOnlyPaths=\n" + "\n".join(
        f"{k}={v}" for k, v in directives(VIEW) if k.startswith("Bind") and v != "/srv/rzsb-src:/srv/rzsb-ro"),
     "the read-only bind gone"),
    (f"{FS_SVC}:bind:/srv/rzsb-rw", FS_SVC, "[Service]\nBindReadOnlyPaths=/srv/rzsb-src:/srv/rzsb-rw",
     "another, read-only, source at the read-write bind"),
]


@pytest.mark.parametrize(("aspect", "service", "dropin", "what"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_negative_control_fails_exactly_its_check(box: Sandbox, aspect: str, service: str, dropin: str,
                                                  what: str) -> None:
    box.mutate(service, dropin)
    try:
        verdicts = box.verdicts()
    finally:
        box.restore(service)
    assert {k for k, v in verdicts.items() if v != "pass"} == {aspect}, (what, verdicts)


def test_negative_control_of_the_overlay_lower_and_its_mount(box: Sandbox) -> None:
    unit = mount_unit(VIEW)
    box.out(f"systemctl stop '{unit}'")  # the service keeps its own bind of the old overlay
    try:
        verdicts = box.verdicts()
    finally:
        box.out(f"systemctl start '{unit}' && systemctl restart {FS_SVC}")
    assert {k for k, v in verdicts.items() if v != "pass"} == {"overlay-mounted"}, verdicts
    d = f"/etc/systemd/system/{unit}.d"
    box.out(f"mkdir -p '{d}' && printf '[Mount]\\nOptions=\\nOptions=lowerdir=/usr/share/doc,upperdir={DIRS.upper},"
            f"workdir={DIRS.work}\\n' > '{d}/zz-rzsb-mutation.conf' && systemctl daemon-reload && "
            f"systemctl restart '{unit}' && systemctl restart {FS_SVC}")
    try:
        verdicts = box.verdicts()
    finally:
        box.out(f"rm -rf '{d}' && systemctl daemon-reload && systemctl restart '{unit}' && systemctl restart {FS_SVC}")
    assert {k for k, v in verdicts.items() if v != "pass"} == {f"{FS_SVC}:overlay:/srv/rzsb-app"}, verdicts


def test_negative_control_of_lsns(box: Sandbox) -> None:
    """lsns that reports PID 1's namespaces for any process: the check compares it with /proc."""
    box.out("printf '#!/bin/sh\\nexec /usr/bin/lsns -J -p 1 -o NS,TYPE,PID\\n' > /usr/local/bin/lsns && "
            "chmod 755 /usr/local/bin/lsns")
    try:
        verdicts = box.verdicts()
    finally:
        box.out("rm -f /usr/local/bin/lsns")
    assert {k for k, v in verdicts.items() if v != "pass"} == {f"{NS_SVC}:lsns", "rzsb-net.service:lsns"}, verdicts


def test_a_clean_node_again_passes_and_changes_nothing(box: Sandbox) -> None:
    assert set(box.verdicts().values()) == {"pass"}
    assert box.apply().changed == 0


def test_removal_leaves_no_unit_drop_in_mount_or_dir_of_ours(box: Sandbox) -> None:
    box.apply("absent")
    files = " ".join(shlex.quote(p) for p in PLAN["files"])
    assert box.out(f"for p in {files}; do [ -e \"$p\" ] && echo \"$p\"; done; true") == ""
    units = " ".join(shlex.quote(u["unit"]) for u in PLAN["units"] if u["owned"])
    assert box.out(f"systemctl list-units --all --plain --no-legend {units}; true") == ""
    assert box.out(f"findmnt -J --list -o TARGET | grep -c ringzero_fsview; ls -d /run/{DIRS.runtime} 2>/dev/null; "
                   "ls -d /etc/systemd/system/rzsb-*.d/* 2>/dev/null; true").split() == ["0", STOP]  # the test's own
    assert box.out(f"cat {LOWER}/base.txt; ls -A {LOWER}").split() == ["base", "base.txt"]
    assert [ln for ln in box.out("ls -A /srv").splitlines() if ln.startswith("rzsb")]  # ours to clean, kept
    box.sh(CLEANUP)
    box.out(PREPARE)  # the fixture's teardown removes them again, after its own (no-op) removal
