"""The bhyve and Hyper-V domains ringzero renders pass libvirt's schema (virt-xml-validate) AND
the driver's own constraints, checked against domain-capability fixtures (tests/data/domaincaps);
the negative controls show what the schema alone lets through."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ringzero.domcaps import DomainCaps, problems
from tests.artifacts import all_artifacts
from tests.fixtures import local_topology

CAPS_DIR = Path(__file__).resolve().parent.parent / "data" / "domaincaps"
ARTIFACTS = all_artifacts(local_topology())
# Each rendered domain type, and the hosts' documents it must fit.
FITS = {"bhyve": ("bhyve_uefi.x86_64.xml", "bhyve_fbuf.x86_64.xml"), "hyperv": ("hyperv_2019.x86_64.xml",)}
DOMAINS = sorted(n for n in ARTIFACTS if n.startswith(("domain-bhyve-", "domain-hyperv-")) and n.endswith(".xml"))


def _validate(text: str, schema: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    f = tmp_path / f"x.{schema}.xml"
    f.write_text(text)
    return subprocess.run(["virt-xml-validate", str(f), schema], capture_output=True, text=True, timeout=60)


def test_every_domain_type_is_rendered() -> None:
    assert {n.split("-")[1] for n in DOMAINS} == set(FITS)


@pytest.mark.parametrize("fixture", sorted(p.name for p in CAPS_DIR.glob("*.xml")))
def test_fixture_is_a_valid_domcapabilities_document(fixture: str, tmp_path: Path) -> None:
    res = _validate((CAPS_DIR / fixture).read_text(), "domaincaps", tmp_path)
    assert res.returncode == 0, res.stderr + res.stdout


@pytest.mark.parametrize("name", DOMAINS)
def test_domain_passes_schema_and_driver_capabilities(name: str, tmp_path: Path) -> None:
    res = _validate(ARTIFACTS[name], "domain", tmp_path)
    assert res.returncode == 0, res.stderr + res.stdout
    for fixture in FITS[name.split("-")[1]]:
        found = problems(ARTIFACTS[name], DomainCaps.parse((CAPS_DIR / fixture).read_text()))
        assert found == [], f"{name} against {fixture}: {found}"


# What libvirt's schema accepts and the driver refuses: each must pass virt-xml-validate and be
# refused by the capability check with this message.
SCHEMA_ONLY = [
    ("bhyve-ide-disk", "domain-bhyve-vm1.xml", "bhyve_uefi.x86_64.xml", ("bus='virtio'", "bus='ide'"),
     "devices/disk[1]/target/@bus='ide' is invalid; allowed: one of 'virtio', 'sata'"),
    ("bhyve-pty-console", "domain-bhyve-vm1.xml", "bhyve_uefi.x86_64.xml",
     ("<serial type='nmdm'>\n      <source master='/dev/nmdm-vm1.1A' slave='/dev/nmdm-vm1.1B'/>",
      "<serial type='pty'>"),
     "devices/serial[1]/@type='pty' is invalid; allowed: one of 'nmdm', 'tcp'"),
    ("bhyve-uefi-without-boot-rom", "domain-bhyve-vm1.xml", "bhyve_basic.x86_64.xml", ("", ""),
     "os/loader='/usr/local/share/uefi-firmware/BHYVE_UEFI.fd' is invalid; allowed: no <loader>"),
    ("bhyve-kernel-boot", "domain-bhyve-vm1.xml", "bhyve_uefi.x86_64.xml",
     ("</os>", "  <kernel>/boot/vmlinuz</kernel>\n  </os>"), "os/kernel='/boot/vmlinuz' is invalid"),
    ("hyperv-virtio-disk", "domain-hyperv-vm1.xml", "hyperv_2019.x86_64.xml",
     ("<target dev='hda' bus='ide'/>\n      <address type='drive' controller='0' bus='0' target='0' unit='0'/>",
      "<target dev='vda' bus='virtio'/>"),
     "devices/disk[1]/target/@bus='virtio' is invalid; allowed: one of 'ide', 'scsi', 'fdc'"),
    ("hyperv-com0", "domain-hyperv-vm1.xml", "hyperv_2019.x86_64.xml", ("<target port='1'/>", "<target port='0'/>"),
     "devices/serial[1]/target/@port='0' is invalid; allowed: one of '1', '2'"),
]


@pytest.mark.parametrize(("name", "fixture", "change", "expected"), [c[1:] for c in SCHEMA_ONLY],
                         ids=[c[0] for c in SCHEMA_ONLY])
def test_schema_accepts_what_the_driver_refuses(name: str, fixture: str, change: tuple[str, str], expected: str,
                                                tmp_path: Path) -> None:
    assert change[0] in ARTIFACTS[name]
    text = ARTIFACTS[name].replace(change[0], change[1], 1) if change[0] else ARTIFACTS[name]
    res = _validate(text, "domain", tmp_path)
    assert res.returncode == 0, f"libvirt's schema should accept it: {res.stderr}{res.stdout}"
    found = [str(e) for e in problems(text, DomainCaps.parse((CAPS_DIR / fixture).read_text()))]
    assert len(found) == 1 and expected in found[0], found
