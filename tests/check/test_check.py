"""`ringzero check` as a user runs it: the console script of a fresh venv with only the wheel, on
this machine and on guests booted by hand. Tests run in file order and share the guests."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import jsonschema
import pytest

from tests.check.conftest import GUESTS, REPORTS, Cli, Fleet
from tests.fixtures import junit_statuses as statuses

pytestmark = pytest.mark.check

ROOT = Path(__file__).resolve().parents[2]
SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
CONTROLS = ["RZ-CGROUP-1", "RZ-CGROUP-2", "RZ-APPARMOR-1", "RZ-APPARMOR-2", "RZ-SECCOMP-1", "RZ-BPF-1",
            "RZ-PTRACE-1", "RZ-USERNS-1", "RZ-LANDLOCK-1", "RZ-BPFLSM-1", "RZ-KVM-1", "RZ-KVM-2", "RZ-LIBVIRT-1"]
REQUIRES = {"RZ-CGROUP-2": "RZ-CGROUP-1", "RZ-APPARMOR-2": "RZ-APPARMOR-1"}
# Runtime negative controls on the `good` guest: (break, put back). RZ-SECCOMP-1's kernel
# facility cannot be switched off on a running (or booting) Debian kernel: its negative control
# overlays /proc/sys/kernel/seccomp/actions_avail with what a kernel without filter actions shows.
RUNTIME_BREAKS = {
    "RZ-APPARMOR-2": ("apparmor_parser -r -C /etc/apparmor.d/lsb_release",
                      "apparmor_parser -r /etc/apparmor.d/lsb_release"),
    "RZ-SECCOMP-1": ("printf 'allow\\n' > /run/rz-actions && mount --bind /run/rz-actions "
                     "/proc/sys/kernel/seccomp/actions_avail", "umount /proc/sys/kernel/seccomp/actions_avail"),
    "RZ-BPF-1": ("sysctl -q -w kernel.unprivileged_bpf_disabled=0", "sysctl -q -w kernel.unprivileged_bpf_disabled=2"),
    "RZ-PTRACE-1": ("sysctl -q -w kernel.yama.ptrace_scope=0", "sysctl -q -w kernel.yama.ptrace_scope=1"),
    "RZ-USERNS-1": ("sysctl -q -w kernel.unprivileged_userns_clone=1",
                    "sysctl -q -w kernel.unprivileged_userns_clone=0"),
    # The active LSM list is fixed at boot: its negative controls bind-mount over it what a kernel
    # booted without Landlock (without the BPF LSM) shows, and unmount it again.
    "RZ-LANDLOCK-1": ("printf 'lockdown,capability,yama,apparmor,tomoyo,bpf\\n' > /run/rz-lsm && "
                      "mount --bind /run/rz-lsm /sys/kernel/security/lsm", "umount /sys/kernel/security/lsm"),
    "RZ-BPFLSM-1": ("printf 'lockdown,capability,landlock,yama,apparmor,tomoyo\\n' > /run/rz-lsm && "
                    "mount --bind /run/rz-lsm /sys/kernel/security/lsm", "umount /sys/kernel/security/lsm"),
    "RZ-KVM-1": ("chmod 0666 /dev/kvm", "chmod 0660 /dev/kvm"),
    "RZ-KVM-2": ("modprobe -r kvm_amd && modprobe kvm_amd nested=1",
                 "modprobe -r kvm_amd && modprobe kvm_amd nested=0 && udevadm settle"),
    "RZ-LIBVIRT-1": ("sed -i 's/^security_driver = \"apparmor\"/security_driver = \"none\"/' /etc/libvirt/qemu.conf",
                     "sed -i 's/^security_driver = \"none\"/security_driver = \"apparmor\"/' /etc/libvirt/qemu.conf"),
}
BOOT_BREAKS = {broken: name for name, (_, _, _, broken) in GUESTS.items() if broken}


# ---- this machine -------------------------------------------------------------------------
def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _local_expectation() -> dict[str, str]:
    """Each control's verdict on this machine, from Python's own reads (not the probe's shell)."""
    mounts = [line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    fstype = next((m[m.index("-") + 1] for m in reversed(mounts) if m[4] == "/sys/fs/cgroup"), None)
    exp: dict[str, str] = {}
    exp["RZ-CGROUP-1"] = "pass" if fstype == "cgroup2" else "fail"
    ctl = (_read("/sys/fs/cgroup/cgroup.controllers") or "").split()
    exp["RZ-CGROUP-2"] = ("skipped" if exp["RZ-CGROUP-1"] != "pass" else
                          "pass" if {"cpu", "memory", "io", "pids"} <= set(ctl) else "fail")
    exp["RZ-APPARMOR-1"] = "pass" if _read("/sys/module/apparmor/parameters/enabled") == "Y" else "fail"
    profiles = _read("/sys/kernel/security/apparmor/profiles") or ""
    exp["RZ-APPARMOR-2"] = ("skipped" if exp["RZ-APPARMOR-1"] != "pass" else
                            "pass" if "(enforce)" in profiles and "(complain)" not in profiles else "fail")
    actions = (_read("/proc/sys/kernel/seccomp/actions_avail") or "").split()
    exp["RZ-SECCOMP-1"] = "pass" if {"kill_process", "errno"} <= set(actions) else "fail"
    exp["RZ-BPF-1"] = "pass" if _read("/proc/sys/kernel/unprivileged_bpf_disabled") in ("1", "2") else "fail"
    scope = _read("/proc/sys/kernel/yama/ptrace_scope")
    exp["RZ-PTRACE-1"] = "pass" if scope is not None and int(scope) >= 1 else "fail"
    restricted = (_read("/proc/sys/kernel/unprivileged_userns_clone") == "0"
                  or _read("/proc/sys/user/max_user_namespaces") == "0"
                  or _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1")
    exp["RZ-USERNS-1"] = "pass" if restricted else "fail"
    lsms = (_read("/sys/kernel/security/lsm") or "").split(",")
    exp["RZ-LANDLOCK-1"] = "pass" if "landlock" in lsms else "fail"
    exp["RZ-BPFLSM-1"] = "pass" if "bpf" in lsms else "fail"
    if os.path.exists("/dev/kvm"):
        st = os.stat("/dev/kvm")
        exp["RZ-KVM-1"] = "pass" if st.st_uid == 0 and not st.st_mode & stat.S_IRWXO else "fail"
    else:
        exp["RZ-KVM-1"] = "n/a"
    nested = [_read(f"/sys/module/{m}/parameters/nested") for m in ("kvm_intel", "kvm_amd")]
    nested = [n for n in nested if n is not None]
    exp["RZ-KVM-2"] = "n/a" if not nested else "pass" if any(n in ("N", "0") for n in nested) else "fail"
    conf = _read("/etc/libvirt/qemu.conf")
    bad = conf is not None and re.search(r'(?m)^\s*(security_driver\s*=\s*"none"|security_default_confined\s*=\s*0)',
                                         conf)
    exp["RZ-LIBVIRT-1"] = "n/a" if conf is None else "fail" if bad else "pass"
    return exp


def test_this_machine_from_the_wheel(cli: Cli, tmp_path: Path) -> None:
    junit, sarif = tmp_path / "local.xml", tmp_path / "local.sarif"
    res = cli("check", "--hosts", "local://", "--baseline", "isolation", "--junit", junit, "--sarif", sarif)
    expected = _local_expectation()
    got = {control: s for (host, control), s in statuses(junit).items() if host == "local"}
    assert got == expected, res.stdout + res.stderr
    assert res.returncode == (1 if "fail" in expected.values() else 0), res.stderr
    assert re.search(r"score \d+% \(\d+/\d+ judged checks pass\) on 1 host", res.stdout), res.stdout
    assert re.search(r"(?m)^local +done: ", res.stderr), res.stderr  # the host's progress line
    assert not list(jsonschema.Draft4Validator(SARIF_SCHEMA).iter_errors(json.loads(sarif.read_text())))


# ---- a guest ringzero did not build ------------------------------------------------------------
def _check_good(cli: Cli, fleet: Fleet, junit: Path, *extra: str) -> tuple[int, dict[str, str], str]:
    g = fleet.guests["good"]
    res = cli("check", "--hosts", f"good=ssh://root@127.0.0.1:{g.port}", "--baseline", "isolation",
              "-i", g.key_file, "--known-hosts", fleet.known_hosts, "--junit", junit, *extra)
    return res.returncode, {c: s for (_, c), s in statuses(junit).items()}, res.stdout + res.stderr


def test_hardened_guest_passes_every_control(cli: Cli, fleet: Fleet, tmp_path: Path) -> None:
    logins = fleet.guests["good"].ssh_logins()
    rc, got, out = _check_good(cli, fleet, tmp_path / "good.xml", "--sarif", tmp_path / "good.sarif")
    # one SSH connection for the whole check (the second login is this count's own)
    assert fleet.guests["good"].ssh_logins() == logins + 2
    assert got == dict.fromkeys(CONTROLS, "pass"), out
    assert rc == 0 and f"score 100% ({len(CONTROLS)}/{len(CONTROLS)} judged checks pass)" in out
    doc = json.loads((tmp_path / "good.sarif").read_text())
    assert not list(jsonschema.Draft4Validator(SARIF_SCHEMA).iter_errors(doc))
    assert {r["kind"] for r in doc["runs"][0]["results"]} == {"pass"}


def test_a_login_that_is_not_root_gets_errors_or_uses_sudo(cli: Cli, fleet: Fleet, tmp_path: Path) -> None:
    """What a plain login cannot read is undecided (exit 2, named), never passed or failed."""
    g = fleet.guests["good"]
    g.ssh("id auditor >/dev/null 2>&1 || useradd -m -s /bin/sh auditor; install -d -o auditor -m 700 ~auditor/.ssh; "
          "install -o auditor -m 600 /root/.ssh/authorized_keys ~auditor/.ssh/authorized_keys; "
          "echo 'auditor ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/auditor")
    base = ["check", "--hosts", f"good=ssh://auditor@127.0.0.1:{g.port}", "--baseline", "isolation",
            "-i", g.key_file, "--known-hosts", fleet.known_hosts]
    res = cli(*base, "--junit", tmp_path / "plain.xml")
    got = {c: s for (_, c), s in statuses(tmp_path / "plain.xml").items()}
    errors = {c for c, s in got.items() if s == "error"}
    assert res.returncode == 2 and "RZ-APPARMOR-2" in errors, res.stdout + res.stderr
    assert set(got.values()) <= {"pass", "error"}, got  # nothing judged from what could not be read
    assert "exists but this login cannot read it" in res.stdout
    res = cli(*base, "--sudo", "--junit", tmp_path / "sudo.xml")
    assert res.returncode == 0, res.stdout + res.stderr
    assert set(statuses(tmp_path / "sudo.xml").values()) == {"pass"}


@pytest.mark.parametrize("control", CONTROLS)
def test_negative_control(control: str, cli: Cli, fleet: Fleet, tmp_path: Path) -> None:
    """A node where exactly this control is broken fails exactly this control."""
    junit = tmp_path / "n.xml"
    if control in BOOT_BREAKS:
        name = BOOT_BREAKS[control]
        g = fleet.guests[name]
        res = cli("check", "--hosts", f"{name}=ssh://root@127.0.0.1:{g.port}", "--baseline", "isolation",
                  "-i", g.key_file, "--known-hosts", fleet.known_hosts, "--junit", junit)
        rc, got, out = res.returncode, {c: s for (_, c), s in statuses(junit).items()}, res.stdout + res.stderr
    else:
        brk, fix = RUNTIME_BREAKS[control]
        g = fleet.guests["good"]
        g.ssh(brk)
        try:
            rc, got, out = _check_good(cli, fleet, junit)
        finally:
            g.ssh(fix)
    assert {c for c, s in got.items() if s == "fail"} == {control}, out
    assert rc == 1
    dependents = {c for c, r in REQUIRES.items() if r == control}
    assert {c for c, s in got.items() if s == "skipped"} == dependents, out


def test_every_control_has_a_negative_control() -> None:
    assert set(RUNTIME_BREAKS) | set(BOOT_BREAKS) == set(CONTROLS)
    assert not set(RUNTIME_BREAKS) & set(BOOT_BREAKS)


# ---- the fleet: inventory, waivers, reports, the browser --------------------------------------------
def test_fleet_with_waivers_reports_and_browser(cli_ansible: Cli, fleet: Fleet, tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n"
        "  - control: RZ-APPARMOR-1\n    hosts: [noaa]\n"
        "    reason: AppArmor is being rolled out on this host (OPS-12)\n    expires: 2099-12-31\n"
        "  - control: RZ-CGROUP-1\n    hosts: [leg*]\n"
        "    reason: legacy cgroup hierarchy until the kernel upgrade\n    expires: 2020-01-31\n")
    junit, sarif, page = tmp_path / "fleet.xml", tmp_path / "fleet.sarif", REPORTS / "ringzero-check.html"
    res = cli_ansible("check", "--inventory", fleet.inventory(), "--baseline", "isolation", "--waivers", waivers,
                      "--known-hosts", fleet.known_hosts, "--junit", junit, "--sarif", sarif, "--html", page)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    got = statuses(junit)
    hosts = [*GUESTS, "self"]
    assert sorted({h for h, _ in got}) == sorted(hosts)
    assert got[("noaa", "RZ-APPARMOR-1")] == "waived"
    assert got[("legacy", "RZ-CGROUP-1")] == "fail" and "expired on 2020-01-31" in out
    assert got[("nopids", "RZ-CGROUP-2")] == "fail"
    for h in hosts:
        assert re.search(rf"(?m)^{h} +done: ", res.stderr), res.stderr  # one line per host, when it is done
    assert not re.search(r"(?m)^\S+ +(connecting|reading|checking) ", res.stderr), res.stderr  # not a terminal
    # in parallel: the guests' own times add up to well over the run's
    per_host = sum(float(s) for s in re.findall(r"(?m)^\S+ +done: .*\(([0-9.]+) s\)$", res.stderr))
    wall = float(re.findall(r"; ([0-9.]+) s$", res.stdout.strip())[-1])
    assert per_host > 1.5 * wall, (per_host, wall)
    doc = json.loads(sarif.read_text())
    assert not list(jsonschema.Draft4Validator(SARIF_SCHEMA).iter_errors(doc))
    waived = [r for r in doc["runs"][0]["results"] if r.get("suppressions")]
    assert [(r["properties"]["host"], r["ruleId"]) for r in waived] == [("noaa", "RZ-APPARMOR-1")]
    _browser(page, hosts, got)


def _browser(page: Path, hosts: list[str], got: dict[tuple[str, str], str]) -> None:
    """The HTML report in Debian's Chromium: one row per host, one column per control, failures
    in red; the screenshot is kept beside the report (CI artifact)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "chromium and chromium-driver are installed by `make setup`"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--window-size=1400,1000", "--hide-scrollbars"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    try:
        driver.get(page.resolve().as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "#matrix tbody tr")
        assert [r.get_attribute("data-host") for r in rows] == hosts
        columns = driver.find_elements(By.CSS_SELECTOR, "#matrix thead th[data-control]")
        assert [c.text for c in columns] == CONTROLS
        colours: dict[str, set[str]] = {}
        for row in rows:
            cells = row.find_elements(By.CSS_SELECTOR, "td")
            assert len(cells) == len(CONTROLS)
            for cell in cells:
                host, control = row.get_attribute("data-host") or "", cell.get_attribute("data-control") or ""
                status = cell.get_attribute("data-status") or ""
                assert status == got[(host, control)], (host, control)
                assert cell.is_displayed() and cell.size["width"] > 10
                colours.setdefault(status, set()).add(cell.value_of_css_property("background-color"))
        assert colours["fail"] == {"rgba(207, 34, 46, 1)"}, colours  # failures are red, and only they
        assert colours["pass"] == {"rgba(218, 251, 225, 1)"} and colours["waived"] == {"rgba(255, 248, 197, 1)"}
        assert driver.find_element(By.CSS_SELECTOR, "#details .expired").is_displayed()
        assert re.fullmatch(r"\d+%", driver.find_element(By.ID, "score").text)
        driver.set_window_size(1400, driver.execute_script("return document.body.scrollHeight") + 100)
        assert driver.save_screenshot(str(REPORTS / "ringzero-check.png"))
    finally:
        driver.quit()
    assert (REPORTS / "ringzero-check.png").stat().st_size > 10_000


def test_unreachable_host_exit_code_and_message(cli: Cli, fleet: Fleet) -> None:
    res = cli("check", "--hosts", "gone=ssh://root@127.0.0.1:1", "--baseline", "isolation",
              "--known-hosts", fleet.known_hosts, "--quiet")
    assert res.returncode == 2
    assert "ringzero: error: gone: cannot connect over SSH to ssh://root@127.0.0.1:1" in res.stderr
    assert "Connection refused" in res.stderr


def test_render_from_the_wheel(cli: Cli, tmp_path: Path) -> None:
    from ringzero.artifacts import artifacts
    from ringzero.spec import to_manifest
    from tests.fixtures import local_topology

    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps(to_manifest(local_topology())))
    res = cli("render", "--manifest", manifest, "--out", tmp_path / "review")
    assert res.returncode == 0, res.stderr
    written = {str(p.relative_to(tmp_path / "review")) for p in (tmp_path / "review").rglob("*") if p.is_file()}
    assert written == set(artifacts(local_topology()))
