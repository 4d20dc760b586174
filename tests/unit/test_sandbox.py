"""The namespaces and fsview kinds: refused input, the tables, rendering, and every check
passing on a node that shows the declared state and failing on one that does not."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ringzero.checks import Check, Probe
from ringzero.facts import covering_mount, findmnt_mounts, lsns_namespaces, proc_ns, stat_ids
from ringzero.kinds import registry
from ringzero.kinds.fsview import expect as fx
from ringzero.kinds.fsview.checks import checks as fsview_checks
from ringzero.kinds.fsview.render import render_fsview
from ringzero.kinds.namespaces import expect as nx
from ringzero.kinds.namespaces.checks import checks as ns_checks
from ringzero.kinds.namespaces.render import render_namespaces
from ringzero.plan import policies_plan
from ringzero.spec import (
    FilesystemViewSpec,
    HostSpec,
    NamespacesSpec,
    NodePolicies,
    OverlaySpec,
    ServiceSpec,
    SpecError,
    from_data,
)
from tests.unit.canned import Result

SVC = "rzsb.service"
FULL = NamespacesSpec("sb", (SVC,), private=("pid", "cgroup", "mnt", "net", "ipc", "uts"),
                      may_create=("cgroup", "mnt", "pid"))
VIEW = FilesystemViewSpec("view", (SVC,), read_only_system=True, writable=("/var/lib/rzsb",),
                          hidden=("/root",), bind_read_only=("/etc/rzsb-src:/etc/rzsb",),
                          bind_read_write=("/srv/rw",), overlay=OverlaySpec("/srv/app", ("/opt/a", "/opt/b")))

# (id, constructor, the message must contain each of these)
CASES: list[tuple[str, Callable[[], Any], tuple[str, ...]]] = [
    ("ns-unknown-type", lambda: NamespacesSpec("n", (SVC,), private=("time",)),
     ("Namespaces 'n'", "private[0]='time'", "'cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts'")),
    ("ns-unknown-create", lambda: NamespacesSpec("n", (SVC,), may_create=("network",)),
     ("may_create[0]='network'", "one of 'cgroup'")),
    ("ns-twice", lambda: NamespacesSpec("n", (SVC,), private=("net", "net")),
     ("private[1]='net'", "each namespace type once")),
    ("ns-services-not-a-list", lambda: NamespacesSpec("n", "web.service"),  # type: ignore[arg-type]
     ("services='web.service'", "a tuple of service unit names")),
    ("ns-bad-service", lambda: NamespacesSpec("n", ("web",)), ("services[0]='web'", "ending in '.service'")),
    ("ns-bad-name", lambda: NamespacesSpec("n/x", (SVC,)), ("name='n/x'", "letters, digits")),
    ("ns-launcher-refused", lambda: NamespacesSpec("n", (SVC,), private=("pid",), may_create=()),
     ("may_create=()", "includes 'pid'", "RestrictNamespaces=")),
    ("ns-ipc-without-mnt", lambda: NamespacesSpec("n", (SVC,), private=("ipc",)),
     ("private=('ipc',)", "'mnt' when it has 'ipc'", "PrivateIPC=")),
    ("view-relative", lambda: FilesystemViewSpec("v", (SVC,), writable=("var/lib",)),
     ("FilesystemView 'v'", "writable[0]='var/lib'", "an absolute path")),
    ("view-dotdot", lambda: FilesystemViewSpec("v", (SVC,), hidden=("/srv/../etc",)),
     ("hidden[0]='/srv/../etc'", "without '..'")),
    ("view-hidden-root", lambda: FilesystemViewSpec("v", (SVC,), hidden=("/",)),
     ("hidden[0]='/'", "other than '/'")),
    ("view-hidden-and-writable", lambda: FilesystemViewSpec("v", (SVC,), writable=("/srv",), hidden=("/srv",)),
     ("hidden[0]='/srv'", "declared once in a view", "writable[0]")),
    ("view-writable-under-hidden", lambda: FilesystemViewSpec("v", (SVC,), writable=("/srv/a",), hidden=("/srv",)),
     ("writable[0]='/srv/a'", "outside the hidden /srv", "both hidden and writable")),
    ("view-bind-malformed", lambda: FilesystemViewSpec("v", (SVC,), bind_read_only=("/a:b",)),
     ("bind_read_only[0]='/a:b'", "SOURCE:DESTINATION")),
    ("view-bind-colon", lambda: FilesystemViewSpec("v", (SVC,), bind_read_write=("/a:/b:/c",)),
     ("bind_read_write[0]='/a:/b:/c'", "no ':' inside a path")),
    ("view-bind-twice", lambda: FilesystemViewSpec("v", (SVC,), bind_read_only=("/a:/d",), bind_read_write=("/b:/d",)),
     ("bind_read_write[0]='/d'", "declared once", "bind_read_only[0]")),
    ("view-overlay-no-lower", lambda: FilesystemViewSpec("v", (SVC,), overlay=OverlaySpec("/srv/app", ())),
     ("overlay.lower=()", "at least one read-only lower")),
    ("view-overlay-lower-inside", lambda: FilesystemViewSpec("v", (SVC,), overlay=OverlaySpec("/srv", ("/srv/l",))),
     ("overlay.lower[0]='/srv/l'", "outside the overlay's target /srv")),
    ("view-overlay-colon", lambda: FilesystemViewSpec("v", (SVC,), overlay=OverlaySpec("/srv/app", ("/opt/a:b",))),
     ("overlay.lower[0]='/opt/a:b'", "without ':'")),
    ("view-overlay-hidden", lambda: FilesystemViewSpec("v", (SVC,), hidden=("/srv",),
                                                       overlay=OverlaySpec("/srv/app", ("/opt/a",))),
     ("overlay.target='/srv/app'", "outside the hidden /srv")),
    ("view-empty", lambda: FilesystemViewSpec("v", (SVC,)), ("read_only_system=False", "a view that declares")),
    ("node-ns-twice", lambda: NodePolicies("vm1", namespaces=(NamespacesSpec("a", (SVC,), private=("net",)),
                                                               NamespacesSpec("b", (SVC,), private=("uts",)))),
     ("Namespaces 'b'", "services[0]='rzsb.service'", "one Namespaces only (already in 'a')")),
    ("node-view-needs-mnt", lambda: NodePolicies("vm1", namespaces=(NamespacesSpec("a", (SVC,), private=("net",)),),
                                                 fsviews=(FilesystemViewSpec("v", (SVC,), read_only_system=True),)),
     ("Namespaces 'a'", "private=('net',)", "a list with 'mnt'", "FilesystemView 'v'")),
    ("node-launcher-not-root", lambda: NodePolicies(
        "vm1", services=(ServiceSpec(SVC, "/usr/bin/sleep infinity", user="nobody"),),
        namespaces=(NamespacesSpec("a", (SVC,), private=("pid",)),)),
     ("services[0]='rzsb.service'", "running as root (it runs as 'nobody')", "CAP_SYS_ADMIN")),
    ("node-launcher-needs-service", lambda: NodePolicies("vm1", namespaces=(NamespacesSpec("a", (SVC,),
                                                                                            private=("pid",)),)),
     ("services", "a service ringzero installs", "Namespaces 'a'")),
    ("manifest-unknown-field", lambda: from_data({"nodes": [{"node": "vm1", "fsviews": [
        {"name": "v", "services": [SVC], "read_only": True}]}]}),
     ("FilesystemViewSpec 'v'", "read_only", "the fields name, services, read_only_system")),
]


@pytest.mark.parametrize(("case", "build", "needles"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_naming_resource_field_value_and_what_is_allowed(
        case: str, build: Callable[[], Any], needles: tuple[str, ...]) -> None:
    with pytest.raises(SpecError) as e:
        build()
    for needle in needles:
        assert needle in str(e.value), f"{case}: {needle!r} not in {e.value}"


def test_valid_views_and_namespaces_are_accepted() -> None:
    NamespacesSpec("n", (SVC,), private=("user",), may_create=())
    NamespacesSpec("n", (SVC,), private=("net",))
    FilesystemViewSpec("v", (SVC,), bind_read_only=("/etc/hosts",), writable=("/",))
    NodePolicies("vm1", services=(ServiceSpec(SVC, "/usr/bin/sleep infinity"),), namespaces=(FULL,), fsviews=(VIEW,))


# ---- the namespaces table ----------------------------------------------------------------------
@pytest.mark.parametrize("row", nx.ROWS, ids=[r.ns for r in nx.ROWS])
def test_each_namespace_row_reaches_the_drop_in_or_the_launcher(row: nx.Row) -> None:
    private = (row.ns, "mnt") if row.ns == "ipc" else (row.ns,)
    spec = NamespacesSpec("n", (SVC,), private=private)
    files = render_namespaces(spec)
    words = nx.launcher(spec)
    if row.directive is not None:
        (text,) = files.values()
        assert f"\n{row.directive}=yes\n" in text
        assert words == ()
    else:
        assert row.flag in words and words[0] == nx.UNSHARE and words[-1] == "--"
        assert "PrivateMounts" not in "".join(files.values())
    assert nx.expected(spec) == {ns: ns in private for ns in nx.BY_NS}


def test_private_network_alone_writes_only_its_directive() -> None:
    # systemd 252 gives a PrivateNetwork= unit no mount namespace of its own (seen on the guest)
    (text,) = render_namespaces(NamespacesSpec("n", (SVC,), private=("net",))).values()
    assert "\n[Service]\nPrivateNetwork=yes\n" in text and "PrivateMounts" not in text


def test_restrict_namespaces_value_and_what_systemd_shows() -> None:
    assert nx.restrict_value(()) == "yes" == nx.restrict_shown(())
    assert nx.restrict_value(("pid", "cgroup")) == "cgroup pid" == nx.restrict_shown(("pid", "cgroup"))
    (text,) = render_namespaces(NamespacesSpec("n", (SVC,), may_create=())).values()
    assert "\nRestrictNamespaces=yes\n" in text


def test_the_launcher_is_chained_into_the_service_unit() -> None:
    plan = policies_plan(NodePolicies("vm1", services=(ServiceSpec(SVC, "/usr/bin/sleep infinity"),),
                                      namespaces=(FULL,)), HostSpec("vm1"))
    unit = plan["files"][f"/etc/systemd/system/{SVC}"]["content"]
    assert ("\nExecStart=/usr/bin/unshare --pid --fork --kill-child --mount-proc --cgroup -- "
            "/usr/bin/sleep infinity\n") in unit
    (u,) = [u for u in plan["units"] if u["unit"] == SVC]
    assert f"/etc/systemd/system/{SVC}.d/ringzero-namespaces-sb.conf" in u["files"]


# ---- namespaces checks on canned node output ----------------------------------------------------
HOST_NS = {"cgroup": 4026531835, "ipc": 4026531839, "mnt": 4026531841, "net": 4026531840, "pid": 4026531836,
           "user": 4026531837, "uts": 4026531838}


class Node:
    """Answers the batched reads from `values` and active probes from `runs` (command -> rc)."""

    def __init__(self, values: dict[str, str], runs: dict[str, int] | None = None) -> None:
        self.values, self.runs = values, runs or {}

    def run(self, command: str, *args: str) -> Result:
        if "ringzero-probe" in command:
            out = "".join(f"\x1e{k}\n" + (f"{self.values[k]}\n" if k in self.values else "\x1emissing\n")
                          for k in args[1:])
            return Result(0, out)
        line = args[0]
        return Result(next((rc for cmd, rc in self.runs.items() if cmd == line), 1), "", "")


def _ns_node(spec: NamespacesSpec, workload: dict[str, int], lsns: dict[str, int] | None = None,
             shown: str = "", runs: dict[str, int] | None = None) -> Node:
    lines = [f"1 {t}:[{i}]" for t, i in HOST_NS.items()] + [f"812 {t}:[{i}]" for t, i in workload.items()]
    listed = json.dumps({"namespaces": [{"ns": i, "type": t, "pid": 812} for t, i in (lsns or workload).items()]})
    return Node({f"shell:{nx.ns_script(SVC, nx.forks(spec))}": "\n".join(lines),
                 f"shell:{nx.lsns_script(SVC, nx.forks(spec))}": listed,
                 f"shell:systemctl show -p RestrictNamespaces --value {SVC}": shown}, runs)


def _outcome(check: Check, node: Node) -> str:
    probe = Probe(node, "vm1")
    try:
        probe.fetch(check.reads)
        check.verify(probe)
    except AssertionError:
        return "fail"
    except Exception:
        return "error"
    return "pass"


def _as_declared(spec: NamespacesSpec) -> dict[str, int]:
    return {t: i + 1000 if t in spec.private else i for t, i in HOST_NS.items()}


def test_ns_checks_pass_on_the_declared_namespaces_and_fail_each_on_its_mutation() -> None:
    spec = FULL
    good = _as_declared(spec)
    restrict = {nx.restrict_probe("cgroup mnt pid", "uts"): 1, nx.restrict_probe("", "uts"): 0}
    node = _ns_node(spec, good, shown="cgroup mnt pid", runs=restrict)
    checks = ns_checks("vm1", spec)
    assert {c.aspect: _outcome(c, node) for c in checks} == dict.fromkeys((c.aspect for c in checks), "pass")
    for t in HOST_NS:  # each type flipped: exactly its check fails (lsns follows /proc here)
        flipped = {**good, t: HOST_NS[t] if t in spec.private else HOST_NS[t] + 7}
        bad = _ns_node(spec, flipped, shown="cgroup mnt pid", runs=restrict)
        assert [c.aspect for c in checks if _outcome(c, bad) == "fail"] == [f"{SVC}:ns:{t}"]
    disagree = _ns_node(spec, good, lsns={**good, "net": 1}, shown="cgroup mnt pid", runs=restrict)
    assert [c.aspect for c in checks if _outcome(c, disagree) == "fail"] == [f"{SVC}:lsns"]
    unrestricted = _ns_node(spec, good, shown="no", runs={nx.restrict_probe("no", "uts"): 0})
    assert [c.aspect for c in checks if _outcome(c, unrestricted) == "fail"] == [f"{SVC}:RestrictNamespaces"]
    allowed = _ns_node(spec, good, shown="cgroup mnt pid", runs={nx.restrict_probe("cgroup mnt pid", "uts"): 0})
    assert [c.aspect for c in checks if _outcome(c, allowed) == "fail"] == [f"{SVC}:RestrictNamespaces"]


def test_ns_checks_are_undecided_or_failed_never_passed_without_a_workload() -> None:
    spec = FULL
    stopped = Node({f"shell:{nx.ns_script(SVC, True)}": "\n".join(f"1 {t}:[{i}]" for t, i in HOST_NS.items())})
    unreadable = Node({})
    for c in ns_checks("vm1", spec):
        assert _outcome(c, stopped) in ("fail", "error")
        assert _outcome(c, unreadable) in ("fail", "error")


def test_a_forked_workload_is_the_launchers_child() -> None:
    assert "children" in nx.ns_script(SVC, True) and "children" not in nx.ns_script(SVC, False)


# ---- the fsview table and checks ------------------------------------------------------------
def test_fsview_directives_mount_unit_and_unit_lines() -> None:
    files = render_fsview(VIEW)
    d = fx.overlay_dirs(VIEW)
    unit = fx.mount_unit(VIEW)
    assert unit == "run-ringzero_fsview_view-merged.mount"
    dropin = files[f"/etc/systemd/system/{SVC}.d/ringzero-fsview-view.conf"]
    for line in ("ProtectSystem=strict", "ReadWritePaths=/var/lib/rzsb", "InaccessiblePaths=-/root",
                 "BindReadOnlyPaths=/etc/rzsb-src:/etc/rzsb", "BindPaths=/srv/rw:/srv/rw",
                 f"BindPaths={d.merged}:/srv/app", f"Wants={unit}", f"After={unit}"):
        assert f"\n{line}\n" in dropin
    mount = files[f"/etc/systemd/system/{unit}"]
    assert f"\nWhere={d.merged}\n" in mount and "\nType=overlay\n" in mount
    assert f"\nOptions=lowerdir=/opt/a:/opt/b,upperdir={d.upper},workdir={d.work}\n" in mount
    assert f"\nRuntimeDirectory={d.runtime} {d.runtime}/upper {d.runtime}/work {d.runtime}/merged\n" in mount
    plan = policies_plan(NodePolicies("vm1", fsviews=(VIEW,)), HostSpec("vm1"))
    assert {"unit": unit, "owned": True, "feature": "fsview", "files": [f"/etc/systemd/system/{unit}"],
            "adopt": False} in plan["units"]


def test_escape_path_is_systemd_escape_path() -> None:
    assert fx.escape_path("/run/ringzero_fsview_a-b/merged") == "run-ringzero_fsview_a\\x2db-merged"
    assert fx.escape_path("/srv/.x") == "srv-\\x2ex"


def _mounts(extra: list[dict[str, str]]) -> str:
    base = [
        {"target": "/", "source": "/dev/vda", "fstype": "ext4", "options": "ro,relatime", "fsroot": "/"},
        {"target": "/usr", "source": "/dev/vda[/usr]", "fstype": "ext4", "options": "ro,relatime", "fsroot": "/usr"},
        {"target": "/etc", "source": "/dev/vda[/etc]", "fstype": "ext4", "options": "ro,relatime", "fsroot": "/etc"},
        {"target": "/boot", "source": "/dev/vda[/boot]", "fstype": "ext4", "options": "ro,relatime", "fsroot": "/boot"},
        {"target": "/var/lib/rzsb", "source": "/dev/vda[/var/lib/rzsb]", "fstype": "ext4",
         "options": "rw,relatime", "fsroot": "/var/lib/rzsb"},
        {"target": "/root", "source": "tmpfs[/systemd/inaccessible/dir]", "fstype": "tmpfs",
         "options": "ro,nosuid,nodev,noexec", "fsroot": "/systemd/inaccessible/dir"},
        {"target": "/etc/rzsb", "source": "/dev/vda[/etc/rzsb-src]", "fstype": "ext4", "options": "ro,relatime",
         "fsroot": "/etc/rzsb-src"},
        {"target": "/srv/rw", "source": "/dev/vda[/srv/rw]", "fstype": "ext4", "options": "rw,relatime",
         "fsroot": "/srv/rw"},
        {"target": "/srv/app", "source": "overlay", "fstype": "overlay",
         "options": "rw,relatime,lowerdir=/opt/a:/opt/b,upperdir=/run/ringzero_fsview_view/upper,"
                    "workdir=/run/ringzero_fsview_view/work", "fsroot": "/"},
    ]
    by_target = {m["target"]: m for m in base}
    for m in extra:
        by_target[m["target"]] = {**by_target.get(m["target"], {}), **m}
    return json.dumps({"filesystems": list(by_target.values())})


IDS = ("host /etc/rzsb-src 2049:11\nview /etc/rzsb 2049:11\nhost /srv/rw 2049:12\nview /srv/rw 2049:12\n")


def _view_node(mounts: str, ids: str = IDS, mount_state: str = "active") -> Node:
    return Node({f"shell:{fx.findmnt_script(SVC)}": mounts, f"shell:{fx.ids_script(VIEW, SVC)}": ids,
                 f"unit:{fx.mount_unit(VIEW)}": f"ActiveState={mount_state}\n"})


MUTATIONS: dict[str, tuple[list[dict[str, str]], str, str]] = {
    f"{SVC}:read-only:/usr": ([{"target": "/usr", "options": "rw,relatime"}], IDS, "active"),
    f"{SVC}:read-only:/etc": ([{"target": "/etc", "options": "rw,relatime"}], IDS, "active"),
    f"{SVC}:read-only:/boot": ([{"target": "/boot", "options": "rw,relatime"}], IDS, "active"),
    f"{SVC}:writable:/var/lib/rzsb": ([{"target": "/var/lib/rzsb", "options": "ro,relatime"}], IDS, "active"),
    f"{SVC}:hidden:/root": ([{"target": "/root", "source": "/dev/vda[/root]", "fsroot": "/root"}], IDS, "active"),
    f"{SVC}:bind:/etc/rzsb": ([], IDS.replace("view /etc/rzsb 2049:11", "view /etc/rzsb 2049:99"), "active"),
    f"{SVC}:bind:/srv/rw": ([{"target": "/srv/rw", "options": "ro,relatime"}], IDS, "active"),
    f"{SVC}:overlay:/srv/app": ([{"target": "/srv/app", "fstype": "ext4", "source": "/dev/vda[/srv/app]",
                                   "options": "rw,relatime"}], IDS, "active"),
    "overlay-mounted": ([], IDS, "inactive"),
}


def test_fsview_checks_pass_on_the_declared_view_and_fail_each_on_its_mutation() -> None:
    checks = fsview_checks("vm1", VIEW)
    assert sorted(c.aspect for c in checks) == sorted(MUTATIONS)
    good = _view_node(_mounts([]))
    assert {c.aspect: _outcome(c, good) for c in checks} == dict.fromkeys(MUTATIONS, "pass")
    for aspect, (extra, ids, state) in MUTATIONS.items():
        bad = _view_node(_mounts(extra), ids, state)
        assert [c.aspect for c in checks if _outcome(c, bad) == "fail"] == [aspect], aspect


def test_fsview_checks_never_pass_without_a_process_or_readable_state() -> None:
    for node in (_view_node("{}", "", mount_state="inactive"), Node({})):
        assert all(_outcome(c, node) in ("fail", "error") for c in fsview_checks("vm1", VIEW))


# ---- parsers --------------------------------------------------------------------------------------
def test_parsers_take_garbage_without_raising() -> None:
    for parse in (proc_ns, lsns_namespaces, findmnt_mounts, stat_ids):
        assert not parse(None) and not parse("") and not parse("not json {")
    assert proc_ns("1 net:[x]\n") == {}
    assert covering_mount([], "/x") is None


def test_covering_mount_takes_the_deepest_then_the_last_mounted() -> None:
    ms = findmnt_mounts(_mounts([]))
    assert covering_mount(ms, "/srv/app/x").fstype == "overlay"  # type: ignore[union-attr]
    assert covering_mount(ms, "/srv/other").target == "/"  # type: ignore[union-attr]
    assert covering_mount(ms, "/usrx").target == "/"  # type: ignore[union-attr]


def test_the_kinds_are_registered_in_order() -> None:
    """namespaces before landlock: its unshare launcher runs first and starts Landlock's (a
    Landlock-restricted process may not mount, and unshare --mount-proc mounts)."""
    names = [k.name for k in registry()]
    assert names.index("namespaces") < names.index("fsview") < names.index("landlock")


def test_parsers_on_captured_output() -> None:
    """tests/unit/facts/ (SOURCE.md there): readlink and lsns of one process agree."""
    from tests.fixtures import ROOT

    facts = ROOT / "tests" / "unit" / "facts"
    seen = proc_ns((facts / "proc-ns-buildhost.txt").read_text())
    ((pid, links),) = seen.items()
    assert pid > 1 and sorted(links) == sorted(nx.BY_NS)
    listed = lsns_namespaces((facts / "lsns-buildhost.json").read_text())
    assert {t: listed[t] for t in links} == links and "time" in listed
