"""The Ansible-only way, on a real guest of its own: the built collection installed with
`ansible-galaxy collection install`, the plan written by `ringzero plan`, applied with plain
`ansible-playbook` (no Pulumi, no ansible-runner, nothing of the checkout on Ansible's paths).
Converge; the pytest plugin (testinfra's `--hosts`) and ComplianceCheck's runner prove it;
`--check` reports nothing; a hand edit shows as a `--diff` and is repaired; the
role removes it all. Tests run in order and share the guest (booted once for this module, on
its own port: the tier's shared guest ends broken on purpose, see conftest)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ringzero.checks import expectations
from ringzero.compliance import run_compliance
from ringzero.paths import compliance_dir
from ringzero.plan import node_plan
from ringzero.spec import to_manifest
from tests.fixtures import ROOT, leftovers_script, local_topology, pytest_junit_outcomes
from tests.handboot import HandGuest, hand_booted

pytestmark = pytest.mark.kernel

PORT = 2232
NODE = "vm1"  # the reference declaration's node with every feature: services, slices, AppArmor, seccomp, eBPF, Xen prep
EDITED = "/etc/systemd/system/web.slice"
# the engine's statuses as pytest reports them: n/a and prerequisite skips are skips
AS_PYTEST = {"pass": "passed", "fail": "failure", "error": "error", "n/a": "skipped", "skipped": "skipped"}


@dataclass
class AnsibleNode:
    guest: HandGuest
    workdir: Path
    plan_file: Path
    plan: dict[str, object]
    env: dict[str, str]

    def playbook(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`ansible-playbook -i inventory ARGS` from the work directory, the collection's path only."""
        return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventory.ini", *args],
                              cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=1200)

    def apply(self, *args: str) -> tuple[int, str]:
        """(changed count of the recap, whole output) of a successful run."""
        res = self.playbook(*args)
        out = res.stdout + res.stderr
        assert res.returncode == 0, f"ansible-playbook {' '.join(args)}: rc={res.returncode}\n{out[-4000:]}"
        m = re.search(rf"^{NODE}\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", res.stdout, re.M)
        assert m, out[-3000:]
        return int(m[1]), out


def _ok(*cmd: str | Path, cwd: Path, env: dict[str, str]) -> str:
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{cmd}: rc={res.returncode}\n{res.stdout[-2000:]}{res.stderr[-2000:]}"
    return res.stdout


@pytest.fixture(scope="module")
def anode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnsibleNode]:
    tmp = tmp_path_factory.mktemp("ansible-collection")
    work = tmp / "work"
    work.mkdir()
    bindir = Path(sys.executable).parent
    # only the installed collection: no ANSIBLE_LIBRARY, no config of the checkout or the user
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    (work / "ansible.cfg").write_text("[defaults]\n")
    env.update(PATH=f"{bindir}:{env['PATH']}", ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections"),
               ANSIBLE_CONFIG=str(work / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    out = _ok(sys.executable, ROOT / "tools" / "collection" / "build_collection.py", "--build", tmp / "build",
              "--dist", tmp / "dist", cwd=work, env=env)
    tarball = out.strip().splitlines()[-1]
    assert tarball.endswith(".tar.gz") and Path(tarball).is_file(), out
    _ok(bindir / "ansible-galaxy", "collection", "install", "-p", tmp / "collections", tarball, cwd=work, env=env)
    manifest = work / "manifest.json"
    manifest.write_text(json.dumps(to_manifest(local_topology())))
    plan_file = work / f"{NODE}.yml"
    _ok(sys.executable, "-m", "ringzero.cli", "plan", "--manifest", manifest, "--node", NODE, "--out", plan_file,
        cwd=work, env=env)
    with hand_booted("rz-collection", PORT, tmp / "guest") as guest:
        (work / "inventory.ini").write_text(
            f"{NODE} ansible_host=127.0.0.1 ansible_port={PORT} ansible_user=root "
            f"ansible_ssh_private_key_file={guest.key_file} ansible_python_interpreter=/usr/bin/python3 "
            f"ansible_ssh_common_args='-o UserKnownHostsFile={guest.known_hosts} -o StrictHostKeyChecking=yes'\n")
        yield AnsibleNode(guest, work, plan_file, node_plan(local_topology(), NODE), env)


def test_the_collection_applies_the_plan_with_plain_ansible_playbook(anode: AnsibleNode) -> None:
    changed, out = anode.apply("ringzero.node.site", "-e", f"@{anode.plan_file.name}")
    assert changed == 1, out[-3000:]
    g, plan = anode.guest, anode.plan
    files: dict[str, dict[str, str]] = plan["files"]  # type: ignore[assignment]
    sums = dict(line.split()[::-1] for line in g.ssh("sha256sum " + " ".join(sorted(files))).splitlines())
    for path, spec in files.items():
        assert sums[path] == hashlib.sha256(spec["content"].encode()).hexdigest(), f"{path}: not the planned content"
    slices = {s["unit"]: s["properties"] for s in plan["slices"]}  # type: ignore[attr-defined]
    assert g.ssh("cat /sys/fs/cgroup/web.slice/memory.max") == slices["web.slice"]["MemoryMax"] == "536870912"
    assert g.ssh("cat /sys/fs/cgroup/web.slice/cpu.weight") == slices["web.slice"]["CPUWeight"]
    assert g.ssh("cat /sys/fs/cgroup/batch.slice/memory.max") == slices["batch.slice"]["MemoryMax"]
    assert "ringzero-demo-enforce (enforce)" in g.ssh("cat /sys/kernel/security/apparmor/profiles")
    assert g.ssh("systemctl is-active ringzero-demo-web.service ringzero-ebpf-execsnoop.service") == "active\nactive"
    ledger = json.loads(g.ssh("cat /var/lib/ringzero/ledger.json"))
    assert {p for p, e in ledger["files"].items() if e["owner"] == NODE} == set(files)
    # the Xen preparation is written, and the run says GRUB still has to pick it up
    assert "reboot required" in out


def test_the_pytest_plugin_and_compliance_check_prove_the_node_over_ssh(anode: AnsibleNode) -> None:
    """The suite with testinfra's --hosts (the address, named by --node-names), then as
    ComplianceCheck runs it: every declared check of the node passes, the same verdicts."""
    g, suite = anode.guest, compliance_dir()
    manifest, junit = anode.workdir / "manifest.json", anode.workdir / "plugin.xml"
    res = subprocess.run(
        [sys.executable, "-m", "pytest", suite, f"--rootdir={suite}", "-q", "-p", "no:cacheprovider",
         "--manifest", manifest, "--hosts", g.url, "--node-names", NODE, "--ssh-identity-file", g.key_file,
         "--known-hosts", g.known_hosts, f"--junitxml={junit}", "-o", "junit_family=xunit1"],
        cwd=anode.workdir, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0 and junit.exists(), res.stdout[-3000:] + res.stderr[-2000:]
    by_pytest = pytest_junit_outcomes(junit)
    assert set(by_pytest) == {c.id for c in expectations(local_topology(), {NODE})}
    assert not {"failure", "error"} & set(by_pytest.values()), by_pytest
    assert list(by_pytest.values()).count("passed") > 20, by_pytest
    again = run_compliance(manifest.read_text(), [{**g.node, "name": NODE}], g.private_key,
                           str(anode.workdir / "compliance-check.xml"))
    assert again.failed == again.errors == 0 and again.passed > 20, again.failures
    assert {k: AS_PYTEST[v] for k, v in again.outcomes.items()} == by_pytest


def test_check_mode_after_apply_reports_no_change(anode: AnsibleNode) -> None:
    changed, out = anode.apply("ringzero.node.site", "-e", f"@{anode.plan_file.name}", "--check", "--diff")
    assert changed == 0, out[-3000:]
    assert "--- before" not in out and "+++ after" not in out, out[-3000:]


def test_a_hand_edit_shows_as_a_diff_in_check_mode_then_is_repaired(anode: AnsibleNode) -> None:
    g = anode.guest
    g.ssh(f"echo '# edited by hand' >> {EDITED}")
    changed, out = anode.apply("ringzero.node.cgroup", "-e", f"@{anode.plan_file.name}", "--check", "--diff")
    assert changed == 1
    assert f"--- before: {EDITED}" in out and f"+++ after: {EDITED}" in out, out[-3000:]
    assert "-# edited by hand" in out, out[-3000:]
    assert g.ssh(f"tail -n1 {EDITED}") == "# edited by hand", "check mode changed the file"
    changed, out = anode.apply("ringzero.node.cgroup", "-e", f"@{anode.plan_file.name}", "--diff")
    assert changed == 1 and "-# edited by hand" in out
    assert "# edited by hand" not in g.ssh(f"cat {EDITED}")
    assert anode.apply("ringzero.node.site", "-e", f"@{anode.plan_file.name}")[0] == 0


def test_the_role_with_state_absent_removes_what_the_plan_put_there(anode: AnsibleNode) -> None:
    play = anode.workdir / "remove.yml"
    play.write_text("- name: Remove a ringzero plan\n  hosts: all\n  gather_facts: false\n"
                    "  roles:\n    - role: ringzero.node.ringzero\n      vars:\n        ringzero_state: absent\n")
    changed, out = anode.apply(play.name, "-e", f"@{anode.plan_file.name}")
    assert changed == 1, out[-3000:]
    g = anode.guest
    assert g.ssh(leftovers_script(local_topology(), NODE)) == ""
    assert g.ssh("ls /sys/fs/cgroup | grep -E '^(web|batch)' || true") == ""
    assert "ringzero-demo" not in g.ssh("cat /sys/kernel/security/apparmor/profiles")
    ledger = json.loads(g.ssh("cat /var/lib/ringzero/ledger.json"))
    assert not any((e if isinstance(e, str) else e["owner"]) == NODE for kind in ("files", "dirs", "units", "profiles")
                   for e in ledger[kind].values()), ledger
    assert anode.apply(play.name, "-e", f"@{anode.plan_file.name}")[0] == 0, "a second removal changed something"
    # the role's argument spec refuses what the module would not take
    res = anode.playbook(play.name, "-e", f"@{anode.plan_file.name}", "-e", "ringzero_state=gone")
    assert res.returncode != 0 and "ringzero_state must be one of: present, absent" in res.stdout, res.stdout[-2000:]
