"""ringzero.facts on real node output (tests/unit/facts/, see SOURCE.md there): each parser of
node state, once, as the node module and the checks both use it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ringzero.facts import (
    DPKG_FORMAT,
    CgroupEntry,
    DpkgPackage,
    apparmor_profiles,
    bpf_attachments,
    bpftool_perf,
    cgroup_events,
    dpkg_packages,
    meminfo,
    module_param,
    module_param_path,
    proc_cgroup,
    proc_status,
    seccomp_mode,
    systemctl_show,
    systemctl_show_units,
    unified_cgroup,
)
from tests.node_module import load_node_module

ROOT = Path(__file__).resolve().parents[2]
CAPTURED = Path(__file__).resolve().parent / "facts"


def captured(name: str) -> str:
    return (CAPTURED / name).read_text()


# ---- systemctl show -----------------------------------------------------------------------------
def test_systemctl_show_of_one_unit() -> None:
    shown = systemctl_show(captured("systemctl-show-journald.txt"))
    assert shown["MainPID"] == "195" and shown["ControlGroup"] == "/system.slice/systemd-journald.service"
    assert shown["SystemCallFilter"].startswith("_llseek _newselect accept accept4 ")
    assert shown["SystemCallErrorNumber"] == "1" and shown["SystemCallArchitectures"] == "native"
    assert shown["DropInPaths"] == "" and shown["UnitFileState"] == "static"
    assert systemctl_show("ActiveState=active\nMainPID=12\n") == {"ActiveState": "active", "MainPID": "12"}
    # a value keeps every "=" after the first; a line without one is not a property
    assert systemctl_show("Environment=A=1 B=2\nnoise\n") == {"Environment": "A=1 B=2"}
    assert systemctl_show(None) == systemctl_show("") == {}


def test_systemctl_show_of_many_units_in_one_call() -> None:
    units = ["ssh.service", "systemd-journald.service", "nonexistent-rz.service"]
    shown = systemctl_show_units(captured("systemctl-show-3-units.txt"), units)
    assert shown == {
        "ssh.service": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled",
                        "FragmentPath": "/lib/systemd/system/ssh.service"},
        "systemd-journald.service": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "static",
                                     "FragmentPath": "/lib/systemd/system/systemd-journald.service"},
        "nonexistent-rz.service": {"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": "",
                                   "FragmentPath": ""},
    }
    # fewer blocks than units (systemctl stopped early): the rest are empty, never shifted
    assert systemctl_show_units("ActiveState=active\n", ["a.slice", "b.slice"]) == {
        "a.slice": {"ActiveState": "active"}, "b.slice": {}}
    assert systemctl_show_units(None, ["a.slice"]) == {"a.slice": {}}


# ---- AppArmor -----------------------------------------------------------------------------------
def test_loaded_apparmor_profiles_and_their_modes() -> None:
    loaded = apparmor_profiles(captured("apparmor-profiles.txt"))
    assert len(loaded) == 10 and set(loaded.values()) == {"enforce"}
    assert loaded["libvirtd//qemu_bridge_helper"] == "enforce"
    assert loaded["/{,usr/}sbin/dhclient"] == "enforce"
    assert apparmor_profiles("ringzero-demo (enforce)\n/usr/bin/man (complain)\n") == {
        "ringzero-demo": "enforce", "/usr/bin/man": "complain"}
    assert apparmor_profiles("name with space (kill)\n\n") == {"name with space": "kill"}
    assert apparmor_profiles(None) == {}


# ---- /proc/<pid> --------------------------------------------------------------------------------
def test_proc_status_of_a_filtered_service() -> None:
    s = proc_status(captured("proc-status-journald.txt"))
    assert (s.name, s.pid, s.nspid) == ("systemd-journal", 195, (195,))
    assert (s.seccomp, s.seccomp_filters, s.no_new_privs) == (2, 20, True)
    assert s.cap_eff == 0x25402800CF
    assert s.fields["State"] == "S (sleeping)"
    assert seccomp_mode(captured("proc-status-journald.txt")) == 2
    assert seccomp_mode("Name:\tsleep\nSeccomp:\t2\nSeccomp_filters:\t1\n") == 2
    assert seccomp_mode("Name:\tsleep\n") is None
    nested = proc_status("Name:\tsh\nNSpid:\t4242\t17\t1\nSeccomp:\t0\n")
    assert nested.nspid == (4242, 17, 1) and nested.seccomp == 0 and nested.no_new_privs is None
    assert proc_status(None).name == "" and proc_status(None).seccomp is None


def test_proc_cgroup_unified_and_hybrid() -> None:
    text = captured("proc-cgroup-journald.txt")
    assert proc_cgroup(text) == [CgroupEntry(0, (), "/system.slice/systemd-journald.service")]
    assert unified_cgroup(text) == "/system.slice/systemd-journald.service"
    hybrid = captured("proc-cgroup-hybrid.txt")
    entries = proc_cgroup(hybrid)
    assert len(entries) == 10 and entries[0] == CgroupEntry(9, ("name=systemd",), "/")
    assert CgroupEntry(4, ("memory",), "/process_api/493102541b3ca4cbfa08678e01058e90") in entries
    assert unified_cgroup(hybrid) == "/"
    assert unified_cgroup("1:cpu,cpuacct:/a\n") is None and unified_cgroup(None) is None


def test_cgroup_events() -> None:
    assert cgroup_events(captured("cgroup-events.txt")) == {"populated": 1, "frozen": 0}
    assert cgroup_events(b"populated 0\nfrozen 0\n") == {"populated": 0, "frozen": 0}
    assert cgroup_events(None) == {}


def test_meminfo_figures_in_bytes() -> None:
    figures = meminfo(captured("meminfo.txt"))
    assert figures["MemTotal"] == 983732 * 1024 and figures["Hugepagesize"] == 2048 * 1024
    assert figures["HugePages_Total"] == 0  # a count, not kB
    assert figures["VmallocTotal"] == 34359738367 * 1024
    assert len(figures) == len(captured("meminfo.txt").splitlines())  # every line
    assert meminfo("garbage\n") == {}


# ---- bpftool ------------------------------------------------------------------------------------
def test_bpftool_perf_attachments_per_process() -> None:
    text = captured("bpftool-perf.json")
    assert bpftool_perf(text) == [{"pid": 489, "fd": 6, "prog_id": 19, "fd_type": "tracepoint",
                                   "tracepoint": "sys_enter_execve"}]
    assert bpf_attachments(text) == {489: ["tracepoint:sys_enter_execve (prog 19)"]}
    perf = json.dumps([{"pid": 577, "fd": 9, "prog_id": 90, "fd_type": "tracepoint", "tracepoint": "sys_enter_execve"},
                       {"pid": 577, "fd": 10, "prog_id": 91, "fd_type": "kprobe", "func": "do_sys_openat2",
                        "offset": 0}])
    assert bpf_attachments(perf) == {577: ["tracepoint:sys_enter_execve (prog 90)", "kprobe:do_sys_openat2 (prog 91)"]}
    assert bpf_attachments("[]") == {}
    assert bpf_attachments("Error: not supported") == {} and bpf_attachments(None) == {}
    assert bpftool_perf('{"error": "x"}') == [] and bpftool_perf('[{"fd": 1}]') == []


# ---- packages ----------------------------------------------------------------------------------
def test_dpkg_packages() -> None:
    assert DPKG_FORMAT == "${Package} ${db:Status-Status} ${Version}\n"
    known = dpkg_packages(captured("dpkg-query.txt"))
    assert known == {"bash": DpkgPackage("installed", "5.2.15-2+b8"),
                     "libc6": DpkgPackage("installed", "2.36-9+deb12u14"),
                     "qemu-system-x86": DpkgPackage("installed", "1:7.2+dfsg-7+deb12u18+b3")}
    # removed with its configuration kept; never installed (no version); one line per architecture
    assert dpkg_packages("xen-utils-common config-files 4.17.5\nxen-hypervisor-common not-installed \n") == {
        "xen-utils-common": DpkgPackage("config-files", "4.17.5"),
        "xen-hypervisor-common": DpkgPackage("not-installed", "")}
    assert dpkg_packages("libc6 installed 2.36\nlibc6 not-installed \n")["libc6"].status == "installed"
    assert dpkg_packages("libc6 not-installed \nlibc6 installed 2.36\n")["libc6"].status == "installed"
    assert dpkg_packages(None) == {} and dpkg_packages("garbage\n") == {}


# ---- kernel module parameters ---------------------------------------------------------------------
@pytest.mark.parametrize(("live", "value"), [("Y\n", "1"), ("N\n", "0"), ("1\n", "1"), ("0", "0"),
                                             (b"Y\n", "1"), ("auto\n", "auto"), (None, None)])
def test_module_parameters_as_modprobe_takes_them(live: str | bytes | None, value: str | None) -> None:
    assert module_param(live) == value


def test_module_parameter_path() -> None:
    assert module_param_path("kvm_amd", "nested") == "/sys/module/kvm_amd/parameters/nested"


# ---- the node module reads with these parsers, once -------------------------------------------
class Systemd:
    """AnsibleModule's run_command for a node with a few units: `systemctl show` answers as
    systemd 252 does (one block per unit, an empty line between), verbs change the state."""

    def __init__(self, units: dict[str, dict[str, str]]) -> None:
        self.units = units
        self.calls: list[list[str]] = []
        self.check_mode = False
        self._diff = False

    def fail_json(self, **kw: Any) -> None:
        raise AssertionError(kw["msg"])

    def run_command(self, argv: list[str], **_: Any) -> tuple[int, str, str]:
        self.calls.append(argv)
        if argv[:2] == ["systemctl", "show"]:
            props = argv[argv.index("-p") + 1].split(",")
            names = argv[2:argv.index("-p")]
            blocks = ["".join(f"{p}={self.units.get(n, {'LoadState': 'not-found'}).get(p, '')}\n" for p in props)
                      for n in names]
            return 0, "\n".join(blocks), ""
        if argv[:2] == ["systemctl", "restart"]:
            for name in argv[2:]:
                self.units[name]["ActiveState"] = "active"
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")


def _unit(active: str) -> dict[str, str]:
    return {"ActiveState": active, "UnitFileState": "enabled", "LoadState": "loaded", "FragmentPath": ""}


def _plan(units: list[str]) -> dict[str, Any]:
    return {"node": "vm1", "files": {}, "slices": [], "apparmor": [], "packages": [], "hooks": [],
            "module_params": [],
            "units": [{"unit": u, "owned": True, "feature": "services", "files": [], "adopt": False} for u in units]}


def test_the_module_reads_every_unit_in_one_systemctl_show(tmp_path: Path) -> None:
    node_module = load_node_module()
    names = [f"rz-{i}.service" for i in range(5)]
    systemd = Systemd({n: _unit("active") for n in names})
    node = node_module.converge(systemd, _plan(names), None, None, "present", str(tmp_path))
    assert node.changes == []
    assert systemd.calls == [["systemctl", "show", *sorted(names), "-p", node_module.UNIT_PROPS]]


def test_the_module_reads_a_unit_again_once_systemctl_changed_something(tmp_path: Path) -> None:
    node_module = load_node_module()
    systemd = Systemd({"a.service": _unit("inactive"), "b.service": _unit("active")})
    node = node_module.converge(systemd, _plan(["a.service", "b.service"]), None, None, "present", str(tmp_path))
    assert node.changes == ["start a.service"]
    props = node_module.UNIT_PROPS
    assert systemd.calls == [["systemctl", "show", "a.service", "b.service", "-p", props],
                             ["systemctl", "restart", "a.service"]]
    node.unit_state("b.service")  # after the restart, what was read before is not trusted
    assert systemd.calls[-1][:2] == ["systemctl", "show"] and "b.service" in systemd.calls[-1]


def test_the_module_enables_and_starts_many_units_in_one_systemctl_call_each(tmp_path: Path) -> None:
    """Each systemctl call reloads unit files (seconds on a small node): a plan of many units
    costs one `enable` and one `restart`, not one per unit."""
    node_module = load_node_module()
    names = [f"u{i}.service" for i in range(5)]
    systemd = Systemd({n: _unit("inactive") for n in names})
    node_module.converge(systemd, _plan(names), None, None, "present", str(tmp_path))
    verbs = [c[1] for c in systemd.calls if c[1] != "show"]
    assert verbs.count("restart") == 1 and verbs.count("enable") <= 1, systemd.calls
    assert ["systemctl", "restart", *names] in systemd.calls


def test_the_module_ships_this_file_as_its_module_utils() -> None:
    """playbooks/module_utils/ringzero_facts.py is a link to components/facts.py (Ansible,
    AnsiballZ, the wheel and the collection build all read through it): never a stale copy."""
    shipped = ROOT / "playbooks" / "module_utils" / "ringzero_facts.py"
    assert shipped.is_symlink() and shipped.resolve() == (ROOT / "components" / "facts.py").resolve()
    source = (ROOT / "playbooks" / "library" / "ringzero_node.py").read_text()
    assert "from ansible.module_utils.ringzero_facts import (" in source
