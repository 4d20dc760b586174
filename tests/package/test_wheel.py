"""The library as a wheel: build it, install it in a fresh venv, run the example's tests there."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ringzero.checks import expectations
from ringzero.spec import to_manifest
from tests.fixtures import local_topology, run_ok, wheel_in_fresh_venv

ROOT = Path(__file__).resolve().parents[2]

# one check per declared fact of the reference manifest (vm1's and vm2's)
DECLARED = len(expectations(local_topology()))


def test_wheel_installs_and_serves_another_stack(tmp_path: Path) -> None:
    wheel, venv = wheel_in_fresh_venv(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "ringzero/templates/libvirt/domain.xml.j2" in names
    assert "ringzero/schemas/manifest-v1.json" in names
    assert any(n.startswith("ringzero/playbooks/") for n in names)
    assert "ringzero/playbooks/library/ringzero_node.py" in names
    assert "ringzero/compliance_suite/conftest.py" in names and "ringzero/compliance_suite/test_policies.py" in names
    assert not any(n.startswith(("tests/", "examples/", "ringzero/tests/")) for n in names)

    # the example's tests run from a copy, so nothing of the checkout is importable
    example = tmp_path / "edge"
    run_ok("cp", "-r", ROOT / "examples" / "edge", example)
    out = run_ok(venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=example)
    assert "2 passed" in out, out
    # the compliance suite runs from the installed package: it collects one check per
    # declared fact of the reference manifest (nothing is contacted while collecting)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(to_manifest(local_topology())))
    suite = run_ok(venv / "bin" / "python", "-c", "from ringzero.paths import compliance_dir; print(compliance_dir())",
                 cwd=tmp_path).strip()
    assert suite.startswith(str(venv)), suite
    out = run_ok(venv / "bin" / "python", "-m", "pytest", suite, "--collect-only", "-q", "-p", "no:cacheprovider",
               "--manifest", manifest, "--hosts", "vm1=ssh://root@127.0.0.1:1,vm2=ssh://root@127.0.0.1:2", cwd=tmp_path)
    assert "test_declared[vm1::slice:web.slice::memory.max]" in out and f"{DECLARED} tests collected" in out, out
    out = run_ok(venv / "bin" / "python", "-m", "pytest", suite, "--collect-only", "-q", "-p", "no:cacheprovider",
               "--baseline", "isolation", "--hosts", "local://", cwd=tmp_path)
    assert "test_declared[local::baseline::RZ-KVM-2]" in out and "13 tests collected" in out, out
    # the console script and the data it needs are in the wheel
    assert "ringzero/checks/catalogue.yaml" in names and "ringzero/templates/report/check.html.j2" in names
    assert "ringzero/schemas/catalogue-v1.json" in names
    assert (venv / "bin" / "ringzero").is_file()
