"""`ringzero render` for bhyve and Hyper-V hosts: from a manifest and from stack config (the
reference program under mocks), every artifact written, the domains the ones the library
renders and fitting their drivers' capability fixtures; a declaration the drivers cannot run is
one error line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ringzero.artifacts import artifacts
from ringzero.domcaps import DomainCaps, problems
from ringzero.spec import from_data, to_manifest
from tests.fixtures import ROOT, load_local_config

CAPS_DIR = ROOT / "tests" / "data" / "domaincaps"
HOSTS = [
    {"name": "fbsd1", "kind": "bhyve", "uri": "bhyve+ssh://root@fbsd1.example/system", "vcpus": 4, "memory_mib": 8192},
    {"name": "hv1", "kind": "hyperv", "uri": "hyperv://administrator@hv1.example/?transport=https", "vcpus": 4,
     "memory_mib": 8192},
]
IMAGES = [{"name": "debian-raw", "host": "fbsd1", "source": "/srv/debian-12.img", "format": "raw"},
          {"name": "debian", "host": "hv1", "source": "/srv/debian-12.raw", "format": "raw"}]
VMS = [{"name": "bsdvm1", "host": "fbsd1", "image": "debian-raw", "boot": "bootloader", "vcpus": 2, "memory_mib": 2048},
       {"name": "hvvm1", "host": "hv1", "image": "debian", "boot": "bootloader", "vcpus": 2, "memory_mib": 2048}]
FITS = {"domain-bhyve-bsdvm1.xml": "bhyve_uefi.x86_64.xml", "domain-hyperv-hvvm1.xml": "hyperv_2019.x86_64.xml"}


def _ringzero(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ringzero.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def _written(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}


def _check_written(files: dict[str, str], expected: dict[str, str]) -> None:
    assert files == expected
    for name, fixture in FITS.items():
        assert problems(files[name], DomainCaps.parse((CAPS_DIR / fixture).read_text())) == [], name
    # pulumi-libvirt's XSLT is for QEMU and Xen domains only
    assert "domain-bsdvm1.xsl" not in files and "domain-hvvm1.xsl" not in files
    assert {"cloud-init-bsdvm1-user-data", "cloud-init-hvvm1-meta-data"} <= set(files)


def test_render_from_a_manifest_writes_the_bhyve_and_hyperv_domains(tmp_path: Path) -> None:
    topology = from_data({"hosts": HOSTS, "images": IMAGES, "vms": VMS})
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps(to_manifest(topology)))
    res = _ringzero("render", "--manifest", str(manifest), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    _check_written(_written(tmp_path / "out"), artifacts(topology))


def test_render_from_stack_config_writes_them_beside_the_reference_stack(tmp_path: Path) -> None:
    cfg: dict[str, Any] = load_local_config()
    for key, extra in (("hosts", HOSTS), ("images", IMAGES), ("vms", VMS)):
        cfg[f"ringzero:{key}"] = [*cfg[f"ringzero:{key}"], *extra]
    config = tmp_path / "Pulumi.other.yaml"
    config.write_text(yaml.safe_dump({"config": cfg}))
    res = _ringzero("render", "--program", str(ROOT / "__main__.py"), "--config", str(config),
                    "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    files = _written(tmp_path / "out")
    assert {"domain-qemu-vm1.xml", "domain-vm1.xsl", *FITS} <= set(files)
    ours = artifacts(from_data({"hosts": HOSTS, "images": IMAGES, "vms": VMS}))
    _check_written({k: v for k, v in files.items() if "bsdvm1" in k or "hvvm1" in k}, ours)


@pytest.mark.parametrize(("vm", "expected"), [
    ({"boot": "kernel"}, "VirtualMachine 'bsdvm1': boot='kernel' is invalid; allowed: 'bootloader' on bhyve host"),
    ({"ssh_port": 2299}, "VirtualMachine 'bsdvm1': ssh_port=2299 is invalid; allowed: none on bhyve host 'fbsd1'"),
], ids=["kernel-boot", "ssh-forward"])
def test_render_refuses_what_the_bhyve_driver_cannot_run(vm: dict[str, Any], expected: str, tmp_path: Path) -> None:
    # the image declares a kernel, so only the host's driver stands in the way of booting it
    images = [{**IMAGES[0], "kernel": "/srv/vmlinuz"}]
    manifest = to_manifest(from_data({"hosts": HOSTS[:1], "images": images, "vms": VMS[:1]}))
    manifest["vms"] = [{**manifest["vms"][0], **vm}]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(manifest))
    res = _ringzero("render", "--manifest", str(bad), "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert not (tmp_path / "out").exists()
