"""Checks for NamespacesSpec, built from expect.py: per service, every namespace type of the
workload against PID 1's (declared private: differs; any other: equal), `lsns` agreeing with
/proc, and RestrictNamespaces= in effect (shown by systemd, and refusing an `unshare` in a
transient unit under the same value while the same unit without it may)."""

from __future__ import annotations

from ...checks.base import Check
from ...checks.probe import Probe
from ...facts import lsns_namespaces, proc_ns
from .expect import BY_NS, expected, forks, lsns_script, ns_script, restrict_probe, restrict_shown
from .spec import NAMESPACES, NamespacesSpec

PROBE_TIMEOUT_S = 30


class ProbeRefused(Exception):
    """The probe proves nothing (it cannot run, or also fails without the restriction): `error`."""


def _workload(p: Probe, key: str, service: str) -> tuple[dict[str, int], dict[str, int]]:
    """(PID 1's namespaces, the workload's) from the ns_script key."""
    seen = proc_ns(p.value(key))
    if 1 not in seen or set(seen[1]) != set(NAMESPACES):
        raise ProbeRefused(f"PID 1's namespaces are not readable ({sorted(seen.get(1, {}))})")
    workload = [pid for pid in seen if pid != 1]
    if not workload:
        raise AssertionError(f"{service} has no running workload process to look at")
    return seen[1], seen[workload[0]]


def _ns_type(node: str, spec: NamespacesSpec, service: str, ns: str, private: bool) -> Check:
    key = f"shell:{ns_script(service, forks(spec))}"

    def verify(p: Probe) -> None:
        host, mine = _workload(p, key, service)
        if ns not in mine:
            raise ProbeRefused(f"/proc/<pid>/ns/{ns} of {service}'s workload is not readable")
        if private and mine[ns] == host[ns]:
            raise AssertionError(f"{service}'s workload shares PID 1's {ns} namespace ({ns}:[{host[ns]}]), "
                                 "declared private")
        if not private and mine[ns] != host[ns]:
            raise AssertionError(f"{service}'s workload has its own {ns} namespace ({ns}:[{mine[ns]}], PID 1: "
                                 f"{ns}:[{host[ns]}]), not declared private")

    how = "its own" if private else "PID 1's"
    return Check(node, f"namespaces:{spec.name}", f"{service}:ns:{ns}", verify, (key,),
                 f"{service}'s workload has {how} {ns} namespace")


def _lsns(node: str, spec: NamespacesSpec, service: str) -> Check:
    key = f"shell:{ns_script(service, forks(spec))}"
    lkey = f"shell:{lsns_script(service, forks(spec))}"

    def verify(p: Probe) -> None:
        _, mine = _workload(p, key, service)
        listed = lsns_namespaces(p.value(lkey))
        if not listed:
            raise ProbeRefused(f"lsns listed no namespace of {service}'s workload")
        wrong = [f"{t}: lsns {listed.get(t)}, /proc {mine[t]}" for t in NAMESPACES if listed.get(t) != mine.get(t)]
        if wrong:
            raise AssertionError(f"lsns and /proc/<pid>/ns disagree for {service}'s workload: {'; '.join(wrong)}")

    return Check(node, f"namespaces:{spec.name}", f"{service}:lsns", verify, (key, lkey),
                 f"lsns shows {service}'s workload in the namespaces /proc shows")


def _restricted(node: str, spec: NamespacesSpec, service: str) -> Check | None:
    assert spec.may_create is not None
    refused = [ns for ns in NAMESPACES if ns not in spec.may_create]
    if not refused:
        return None
    want = restrict_shown(spec.may_create)
    key = f"shell:systemctl show -p RestrictNamespaces --value {service}"
    ns = "uts" if "uts" in refused else refused[0]

    def verify(p: Probe) -> None:
        shown = (p.value(key) or "").strip()
        # systemd prints the allowed types in its own order (`no` when unrestricted)
        if p.value(key) is None or set(shown.split()) != set(want.split()):
            raise AssertionError(f"{service} has RestrictNamespaces={shown or '(unreadable)'} in effect, "
                                 f"declared {want}")
        under = p.run(restrict_probe(shown, ns), timeout=PROBE_TIMEOUT_S)
        if under.rc == 0:
            raise AssertionError(f"`unshare {BY_NS[ns].flag}` succeeded under {service}'s RestrictNamespaces=")
        free = p.run(restrict_probe("", ns), timeout=PROBE_TIMEOUT_S)
        if free.rc != 0:
            raise ProbeRefused(f"`unshare` fails even without RestrictNamespaces= (rc={free.rc}): "
                               f"{' '.join((free.stderr or free.stdout).split())}; the probe proves nothing")

    return Check(node, f"namespaces:{spec.name}", f"{service}:RestrictNamespaces", verify, (key,),
                 f"{service} may not create a {ns} namespace")


def checks(node: str, spec: NamespacesSpec) -> list[Check]:
    out: list[Check] = []
    for svc in spec.services:
        out += [_ns_type(node, spec, svc, ns, private) for ns, private in expected(spec).items()]
        out.append(_lsns(node, spec, svc))
        if spec.may_create is not None:
            restricted = _restricted(node, spec, svc)
            if restricted is not None:
                out.append(restricted)
    return out
