"""Declarations shared by the test tiers: the reference stack's config, as specs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ringzero.spec import Topology, from_data

ROOT = Path(__file__).resolve().parent.parent
# Shell counting a guest's SSH logins since boot, the counting login's own included (sshd logs
# it before running the command): e2e and hand-booted guests both use it.
SSH_LOGINS = "journalctl -b -u ssh -q --no-pager | grep -c 'Accepted publickey' || true"


def load_local_config() -> dict[str, Any]:
    """Pulumi.local.yaml's `config:` mapping, as the stack reads it (namespaced keys)."""
    return dict(yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())["config"])


def local_config() -> dict[str, Any]:
    """The `ringzero:*` sections of Pulumi.local.yaml, image paths under a fixed fake directory
    (so golden files do not depend on where the checkout lives)."""
    raw = load_local_config()
    data = {k.split(":", 1)[1]: copy.deepcopy(v) for k, v in raw.items() if k.startswith("ringzero:")}
    for img in data.get("images", []):
        for key in ("source", "kernel", "initrd"):
            if key in img and not img[key].startswith("/"):
                img[key] = "/var/lib/ringzero/images/" + Path(img[key]).name
    return data


def local_topology() -> Topology:
    """The reference declaration, its seccomp filter also denying `sethostname` (first): a call
    that changes the node when made unconfined, so the kernel tier's node-unchanged comparison
    would catch a filter probe that ever issued it outside the filter (it blanked the hostname)."""
    data = local_config()
    for node in data.get("nodes", []):
        for profile in [*node.get("seccomp", []), *(c["seccomp"] for c in node.get("confined", []) if "seccomp" in c)]:
            if profile["name"] == "no-mkdir":
                profile["rules"][0]["names"] = ["sethostname", *profile["rules"][0]["names"]]
    return from_data(data)


def leftovers_script(topology: Topology, node: str) -> str:
    """Shell that prints every file `node`'s plan puts on it, every boot link and loaded unit
    of the units it installs, that still exist: empty output means nothing was left behind."""
    from ringzero.plan import node_plan

    plan = node_plan(topology, node)
    owned = sorted({u["unit"] for u in plan["units"] if u["owned"]} | {s["unit"] for s in plan["slices"]})
    files = " ".join(sorted(plan["files"])) or "-"
    units = " ".join(owned) or "-"
    return (f'for p in {files}; do [ -e "$p" ] && echo "$p"; done; '
            f'for u in {units}; do ls /etc/systemd/system/*.wants/"$u" 2>/dev/null; done; '
            # units ringzero installed: none still loaded (a removed unit that still runs stays loaded)
            f'[ "{units}" = - ] || systemctl list-units --all --plain --no-legend {units}; true')


def junit_statuses(junit: Path) -> dict[tuple[str, str], str]:
    """(host, control) -> status (pass, fail, error, waived, n/a, skipped), read back from the
    JUnit report of `ringzero check`."""
    import xml.etree.ElementTree as ET

    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        status = "pass"
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                status = {"failure": "fail", "error": "error"}.get(tag) or el.get("type") or "skipped"
        out[(case.get("classname") or "", case.get("name") or "")] = status
    return out


def pytest_junit_outcomes(junit: Path) -> dict[str, str]:
    """check id -> passed | failure | error | skipped, read back from a pytest JUnit report of the
    compliance suite (`test_declared[vm1::slice:web.slice::memory.max]`)."""
    import xml.etree.ElementTree as ET

    out: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        cid = name[name.find("[") + 1 : -1] if "[" in name else name
        out[cid] = next((tag for tag in ("failure", "error", "skipped") if case.find(tag) is not None), "passed")
    return out


def run_ok(*cmd: str | Path, cwd: Path | None = None, timeout: int = 900) -> str:
    """Run a command; its stdout, or an assertion error with the end of its output."""
    import subprocess

    res = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res.stdout


def wheel_in_fresh_venv(tmp: Path, extras: str = "pulumi") -> tuple[Path, Path]:
    """(wheel, venv): the checkout built as a wheel into tmp/dist, installed alone in tmp/venv
    as `<wheel>[extras]` at the versions of requirements.lock, as a user would install it."""
    import sys

    run_ok(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", tmp / "dist", ROOT)
    (wheel,) = (tmp / "dist").glob("ringzero-*.whl")
    venv = tmp / "venv"
    run_ok(sys.executable, "-m", "venv", venv)
    run_ok(venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", "-c", ROOT / "requirements.lock",
           f"{wheel}[{extras}]" if extras else wheel)
    return wheel, venv
