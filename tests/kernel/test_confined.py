"""A ConfinedServiceSpec on a real guest: one workload with every isolation kind at once (its own
slice, an AppArmor profile it runs under, a seccomp filter, private namespaces, a read-only
view, a Landlock ruleset started through the launcher, cgroup eBPF address filters).

The parts' own modules prove each kind by effect with negative controls; this one proves the
composition: the unfolded declaration applies in one module run, every check of every part
passes on the running workload (the launcher chain under AppArmor, Landlock under the systemd
sandbox), a second run changes nothing, and removal leaves nothing behind. Runs on the tier's
shared guest; node `rzconf`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringzero.compliance import run_compliance
from ringzero.plan import policies_plan
from ringzero.plan_schema import NodePlan
from ringzero.playbook import RunResult, run_playbook
from ringzero.spec import (
    AppArmorProfileSpec,
    ConfinedServiceSpec,
    FileRule,
    FilesystemViewSpec,
    HostSpec,
    LandlockSpec,
    NamespacesSpec,
    NodePolicies,
    SeccompProfileSpec,
    ServiceSpec,
    SliceSpec,
    SocketFilterSpec,
    SyscallRule,
    Topology,
    to_manifest,
)
from tests.handboot import HandGuest

NODE = "rzconf"
SERVICE = "rzconf-web.service"
DEMO = ConfinedServiceSpec(
    service=ServiceSpec(SERVICE, "/usr/bin/sleep infinity", description="every isolation kind at once",
                        max_exposure=8.0),
    slice=SliceSpec("rzconf.slice", memory_max="128M", tasks_max=64),
    apparmor=AppArmorProfileSpec(
        "rzconf-web", abstractions=("base", "python"),
        # the chain under the profile: Landlock's launcher (a python3 script), then the workload
        files=(FileRule("/usr/local/libexec/ringzero/landlock-exec", "r"), FileRule("/usr/bin/**", "mrix"),
               FileRule("/etc/ringzero/landlock/*", "r"), FileRule("/etc/hostname", "r"),
               FileRule("/etc/shadow", "r", deny=True))),
    seccomp=SeccompProfileSpec("rzconf-no-mkdir", default_action="SCMP_ACT_ALLOW",
                               rules=(SyscallRule(("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", "EPERM"),)),
    namespaces=NamespacesSpec("rzconf-ns", private=("net", "ipc", "uts", "mnt"), may_create=()),
    view=FilesystemViewSpec("rzconf-view", read_only_system=True, hidden=("/home",)),
    landlock=LandlockSpec("rzconf", mode="best_effort", execute=("/usr",), read_only=("/etc",)),
    sockets=SocketFilterSpec("rzconf-net", ip_deny=("any",)),
)
POLICIES = NodePolicies(NODE, confined=(DEMO,))
KINDS = {"service", "slice", "apparmor", "seccomp", "namespaces", "fsview", "landlock", "sockfilter"}


def _apply(guest: HandGuest, plan: NodePlan, state: str = "present") -> RunResult:
    r = run_playbook({**guest.node, "name": NODE}, guest.private_key, {"ringzero_plan": plan, "ringzero_state": state})
    assert r.ok, f"{state}: {r.failures}"
    return r


@pytest.fixture(scope="module")
def applied(shared_guest: HandGuest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HandGuest, Path]]:
    plan = policies_plan(POLICIES, HostSpec(NODE))
    _apply(shared_guest, plan)
    try:
        yield shared_guest, tmp_path_factory.mktemp("confined")
    finally:
        _apply(shared_guest, plan, "absent")


def test_the_confined_service_unfolds_into_every_kind() -> None:
    assert POLICIES.confined == ()
    assert [s.name for s in POLICIES.services] == [SERVICE]
    parts = (POLICIES.slices, POLICIES.apparmor, POLICIES.seccomp, POLICIES.namespaces, POLICIES.fsviews,
             POLICIES.landlock, POLICIES.sockfilter)
    assert [p[0].services for p in parts] == [(SERVICE,)] * len(parts)


def test_every_check_of_every_part_passes_on_the_running_workload(applied: tuple[HandGuest, Path]) -> None:
    guest, tmp = applied
    topology = Topology(hosts=(HostSpec(NODE),), nodes=(POLICIES,))
    verdict = run_compliance(json.dumps(to_manifest(topology)), [{**guest.node, "name": NODE}], guest.private_key,
                             str(tmp / "confined.xml"))
    outcomes = verdict.outcomes
    assert {cid.split("::")[1].split(":")[0] for cid in outcomes} == KINDS, sorted(outcomes)
    assert {cid: o for cid, o in outcomes.items() if o != "pass"} == {}
    # the workload is the launcher's exec: Landlock's marker in its environment, under the profile
    pid = guest.ssh(f"systemctl show -p MainPID --value {SERVICE}")
    assert guest.ssh(f"cat /proc/{pid}/attr/current") == "rzconf-web (enforce)"
    assert "RINGZERO_LANDLOCK=rzconf " in guest.ssh(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    assert guest.ssh(f"readlink /proc/{pid}/ns/net") != guest.ssh("readlink /proc/1/ns/net")


def test_a_second_run_changes_nothing(applied: tuple[HandGuest, Path]) -> None:
    guest, _ = applied
    assert _apply(guest, policies_plan(POLICIES, HostSpec(NODE))).changes == []


def test_removal_leaves_nothing_behind(shared_guest: HandGuest) -> None:
    plan = policies_plan(POLICIES, HostSpec(NODE))
    _apply(shared_guest, plan)
    _apply(shared_guest, plan, "absent")
    files = " ".join(sorted(plan["files"]))
    left = shared_guest.ssh(f'for p in {files}; do [ -e "$p" ] && echo "$p"; done; '
                            f"systemctl list-units --all --plain --no-legend {SERVICE} rzconf.slice; true")
    assert left == ""
    assert "rzconf-web" not in shared_guest.ssh("cat /sys/kernel/security/apparmor/profiles")
