"""Landlock on a Debian 12 guest (kernel 6.1, Landlock ABI 2): a service started through
ringzero's launcher under a declared ruleset, proven by effect; best_effort reports what ABI 2
drops; strict with TCP ports refuses with nothing changed; a negative control per check.

Runs on its own guest (port 2263), or on the dev guest with RINGZERO_DEV_GUEST set.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Iterator

import pytest

from ringzero.checks import Check, Probe
from ringzero.checks.run import judge
from ringzero.kinds import registry
from ringzero.kinds.landlock.expect import BY_NAME, FS_RIGHTS, LAUNCHER, MARKER
from ringzero.kinds.landlock.render import ruleset_text
from ringzero.plan import policies_plan
from ringzero.playbook import RunResult, run_playbook
from ringzero.spec import HostSpec, LandlockSpec, NodePolicies, ServiceSpec
from tests.handboot import GuestHost, HandGuest

RW = "/var/lib/rz-landlock-rw"
SVC = ServiceSpec("rz-landlock-web.service",
                  f"/usr/bin/python3 -m http.server 18081 --bind 127.0.0.1 --directory {RW}")
# strict, handling the filesystem rights ABI 2 has: enforceable on Debian 12 in full
STRICT = LandlockSpec("rz-ll-strict", services=(SVC.name,), mode="strict", execute=("/usr",),
                      read_only=("/etc",), read_write=(RW,),
                      handled_fs=tuple(r for r in FS_RIGHTS if BY_NAME[r].abi <= 2))
RULESET = f"/etc/ringzero/landlock/{STRICT.name}.json"




def apply(guest: HandGuest, policies: NodePolicies, state: str = "present", ok: bool = True) -> RunResult:
    plan = policies_plan(policies, HostSpec(policies.node))
    conn = {**guest.node, "name": policies.node}
    r = run_playbook(conn, guest.private_key, {"ringzero_plan": plan, "ringzero_state": state})
    assert r.ok == ok, f"{policies.node} ({state}): {r.failures}"
    return r


def all_checks(policies: NodePolicies) -> list[Check]:
    host = HostSpec(policies.node)
    return [c for k in registry() for s in k.declared(policies, host) for c in k.checks(policies.node, s)]


def verdicts(guest: HandGuest, checks: list[Check]) -> dict[str, tuple[str, str]]:
    probe = Probe(GuestHost(guest, timeout=240), "guest")
    probe.fetch([k for c in checks for k in c.reads])
    return {c.aspect: judge(c, probe, {}, {}) for c in checks}


def failing(guest: HandGuest, checks: list[Check]) -> dict[str, str]:
    return {a: m for a, (s, m) in verdicts(guest, checks).items() if s != "pass"}


@pytest.fixture(scope="module")
def guest(shared_guest: HandGuest) -> HandGuest:
    """The tier's shared guest (this module removes all it applied)."""
    return shared_guest


@pytest.fixture(scope="module")
def strict(guest: HandGuest) -> Iterator[NodePolicies]:
    pol = NodePolicies("rzll", services=(SVC,), landlock=(STRICT,))
    guest.ssh(f"mkdir -p {RW}")
    first = apply(guest, pol)
    assert first.changed and first.landlock_dropped == []
    yield pol
    apply(guest, pol, "absent")
    guest.ssh(f"rm -rf {RW}")


def test_guest_has_landlock_abi_2(guest: HandGuest) -> None:
    assert guest.ssh(f"python3 -I -S {shlex.quote(LAUNCHER)} --abi || true").strip() in ("2", "")
    assert guest.ssh("python3 -I -S -c 'import ctypes;l=ctypes.CDLL(None);l.syscall.restype=ctypes.c_long;"
                     "print(l.syscall(444,None,0,1))'").strip() == "2"


def test_the_workload_runs_through_the_launcher_with_the_ruleset_hash(guest: HandGuest, strict: NodePolicies) -> None:
    pid = guest.ssh(f"systemctl show -p MainPID --value {SVC.name}").strip()
    assert pid != "0"
    cmdline = guest.ssh(f"tr '\\0' ' ' < /proc/{pid}/cmdline").strip()
    assert cmdline == SVC.exec_start
    env = guest.ssh(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    digest = hashlib.sha256(ruleset_text(STRICT).encode()).hexdigest()
    assert f"{MARKER}={STRICT.name} sha256={digest} abi=2 dropped=-" in env.splitlines()
    assert guest.ssh(f"sha256sum {RULESET}").split()[0] == digest
    # the workload itself is confined: it serves its read_write dir, and nothing outside
    assert guest.ssh(f"grep -c NoNewPrivs:.1 /proc/{pid}/status").strip() == "1"


def test_under_the_same_ruleset_a_write_outside_is_eacces_and_inside_succeeds(guest: HandGuest,
                                                                              strict: NodePolicies) -> None:
    out = guest.run(f"{LAUNCHER} {RULESET} -- /usr/bin/python3 -I -S -c "
                    + shlex.quote("import sys\nfor p in sys.argv[1:]:\n try:\n  open(p,'w').write('x');print(0)\n"
                                  " except OSError as e:\n  print(e.errno)")
                    + f" {RW}/rz-ok /var/tmp/rz-landlock-denied", timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "13"]
    assert guest.ssh(f"cat {RW}/rz-ok; echo; rm -f {RW}/rz-ok; test ! -e /var/tmp/rz-landlock-denied && echo absent"
                     ).split() == ["x", "absent"]


def test_every_check_passes_and_a_second_run_changes_nothing(guest: HandGuest, strict: NodePolicies) -> None:
    assert failing(guest, all_checks(strict)) == {}
    assert apply(guest, strict).changed == 0


def test_negative_controls_each_fail_exactly_their_check(guest: HandGuest, strict: NodePolicies) -> None:
    checks = [c for c in all_checks(strict) if c.subject.startswith("landlock:")]
    unit = SVC.name
    # the ruleset file edited
    guest.ssh(f"cp -p {RULESET} /root/rz-ll.bak && printf ' ' >> {RULESET}")
    try:
        assert set(failing(guest, checks)) == {f"file:{RULESET}"}
    finally:
        guest.ssh(f"cp -p /root/rz-ll.bak {RULESET}")
    # the launcher edited (a comment: it still works)
    guest.ssh(f"cp -p {LAUNCHER} /root/rz-ll-exec.bak && echo '# edited' >> {LAUNCHER}")
    try:
        assert set(failing(guest, checks)) == {f"file:{LAUNCHER}"}
    finally:
        guest.ssh(f"cp -p /root/rz-ll-exec.bak {LAUNCHER} && rm -f /root/rz-ll-exec.bak")
    # the unit's ExecStart overridden (not restarted: the running process is still the confined one)
    dropin = f"/run/systemd/system/{unit}.d"
    guest.ssh(f"mkdir -p {dropin} && printf '[Service]\\nExecStart=\\nExecStart={SVC.exec_start}\\n' "
              f"> {dropin}/rz-neg.conf && systemctl daemon-reload")
    try:
        assert set(failing(guest, checks)) == {f"{unit}:ExecStart"}
    finally:
        guest.ssh(f"rm -rf {dropin} && systemctl daemon-reload")
    # the process started under another ruleset (file changed, service restarted, file put back
    # once the launcher has exec'ed the workload: `systemctl restart` of a Type=simple unit
    # returns before the launcher has read the file)
    guest.ssh(f"printf ' ' >> {RULESET} && systemctl restart {unit} && for i in $(seq 100); do "
              f"grep -qa {MARKER}= /proc/$(systemctl show -p MainPID --value {unit})/environ && break; sleep 0.2; "
              f"done; cp -p /root/rz-ll.bak {RULESET}")
    try:
        assert set(failing(guest, checks)) == {f"{unit}:process"}
    finally:
        guest.ssh(f"systemctl restart {unit} && rm -f /root/rz-ll.bak")
    # the write outside lands in an inode the ruleset lets it write: /var/tmp bound over the test's
    # own read_write dir before the probe's launcher opens it (no file of ringzero's changes, so
    # only the effect check can see it; /var/tmp itself stays as others use it)
    guest.ssh(f"mount --bind /var/tmp {RW}")
    try:
        assert set(failing(guest, checks)) == {"effect:write"}
    finally:
        guest.ssh(f"umount {RW}")
    assert failing(guest, checks) == {}


def test_best_effort_with_tcp_ports_is_applied_and_reports_what_abi_2_drops(guest: HandGuest,
                                                                           strict: NodePolicies) -> None:
    svc = ServiceSpec("rz-landlock-be.service", "/usr/bin/python3 -m http.server 18082 --bind 127.0.0.1")
    spec = LandlockSpec("rz-ll-be", services=(svc.name,), mode="best_effort", execute=("/usr",),
                        read_only=("/etc",), bind_tcp=(18082,))
    # one plan per node (the launcher is one file of the node's plan): the strict plan grown by
    # this spec and its service, then shrunk back to it
    pol = NodePolicies(strict.node, services=(*strict.services, svc), landlock=(*strict.landlock, spec))
    try:
        r = apply(guest, pol)
        assert r.landlock_dropped == ["Landlock 'rz-ll-be' (best_effort): the node's Landlock ABI is 2; dropped "
                                      "truncate (ABI 3), bind_tcp (ABI 4), ioctl_dev (ABI 5)"]
        v = verdicts(guest, [c for c in all_checks(pol) if c.subject == f"landlock:{spec.name}"])
        assert v["abi"] == ("pass", "best_effort: Landlock ABI 2 cannot enforce truncate (ABI 3), bind_tcp (ABI 4), "
                                    "ioctl_dev (ABI 5) of 'rz-ll-be'; those rights are dropped")
        assert v["effect:bind"][0] == "n/a"
        assert {a: s for a, (s, _) in v.items() if s not in ("pass", "n/a")} == {}
        env = guest.ssh(f"tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value {svc.name})/environ")
        want = " abi=2 dropped=bind_tcp,ioctl_dev,truncate"
        assert any(line.startswith(f"{MARKER}=rz-ll-be ") and line.endswith(want) for line in env.splitlines())
    finally:
        apply(guest, strict)
    assert guest.run(f"systemctl show -p LoadState --value {svc.name}; ls /etc/ringzero/landlock",
                     timeout=60).stdout.split() == ["not-found", f"{STRICT.name}.json"]


# The ledger's entries this module's plans own or could write (other helpers' plans change the
# rest of the shared dev guest concurrently).
_OURS = ("import json;d=json.load(open('/var/lib/ringzero/ledger.json'));"
         "print(sorted((s,k,str(v)) for s in ('dirs','files','units','profiles') for k,v in d.get(s,{}).items() "
         "if 'landlock' in k or 'rz-ll' in k or (v.get('owner') if isinstance(v,dict) else v) in ('rzll','rzllst')))")


def _node_state(guest: HandGuest, unit: str) -> str:
    """What a Landlock plan for `unit` could change: ringzero's Landlock files (names, modes,
    sizes, mtimes), the unit, and this module's ledger entries."""
    return guest.ssh(f"ls -la --time-style=full-iso /etc/ringzero/landlock {LAUNCHER} /etc/systemd/system/{unit} "
                     f"2>&1; systemctl show -p LoadState,ActiveState,UnitFileState {unit}; "
                     f"python3 -c {shlex.quote(_OURS)}")


def test_strict_with_tcp_ports_refuses_with_nothing_changed(guest: HandGuest, strict: NodePolicies) -> None:
    svc = ServiceSpec("rz-landlock-st.service", "/usr/bin/python3 -m http.server 18083 --bind 127.0.0.1")
    spec = LandlockSpec("rz-ll-st", services=(svc.name,), mode="strict", execute=("/usr",), read_only=("/etc",),
                        bind_tcp=(18083,), handled_fs=STRICT.handled_fs)
    pol = NodePolicies("rzllst", services=(svc,), landlock=(spec,))
    before = _node_state(guest, svc.name)
    assert "rz-ll-strict.json" in before and "rz-ll-st.json" not in before and "LoadState=not-found" in before
    r = apply(guest, pol, ok=False)
    assert any("Landlock 'rz-ll-st' is strict and the node's Landlock ABI is 2: it cannot enforce bind_tcp (ABI 4); "
               "nothing was changed" in f for f in r.failures), r.failures
    assert _node_state(guest, svc.name) == before
    # the abi check's negative control: this spec's checks on the guest fail it, naming the right
    status, msg = verdicts(guest, [c for c in all_checks(pol) if c.aspect == "abi"])["abi"]
    assert status == "fail" and "bind_tcp (ABI 4)" in msg


def test_removal_leaves_nothing_behind(guest: HandGuest, strict: NodePolicies) -> None:
    apply(guest, strict, "absent")
    left = guest.run(f"ls {RULESET} {LAUNCHER} /etc/systemd/system/{SVC.name} 2>/dev/null; "
                     f"systemctl show -p LoadState --value {SVC.name}", timeout=60).stdout.split()
    assert left == ["not-found"]
    apply(guest, strict)  # back for the module fixture's own removal

