"""ringzero.domcaps: rendered domains against domain-capability fixtures (tests/data/domaincaps,
see SOURCE.md there) and the rules libvirt's bhyve and hyperv drivers apply beyond them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ringzero.domcaps import DomainCaps, check, driver_caps, main, problems
from ringzero.spec import SpecError
from tests.artifacts import all_artifacts
from tests.fixtures import local_topology

CAPS_DIR = Path(__file__).resolve().parent.parent / "data" / "domaincaps"
ARTIFACTS = all_artifacts(local_topology())
BHYVE = ARTIFACTS["domain-bhyve-vm1.xml"]
HYPERV = ARTIFACTS["domain-hyperv-vm1.xml"]


def caps(name: str) -> DomainCaps:
    return DomainCaps.parse((CAPS_DIR / name).read_text())


def messages(domain: str, host: DomainCaps) -> list[str]:
    return [str(e) for e in problems(domain, host)]


def test_fixtures_parse() -> None:
    uefi = caps("bhyve_uefi.x86_64.xml")
    assert (uefi.domain, uefi.arch) == ("bhyve", "x86_64")
    assert uefi.disk.enums["bus"] == ("virtio", "sata") and uefi.disk.enums["diskDevice"] == ("disk", "cdrom")
    assert uefi.loader.supported and uefi.loader.enums == {"type": ("pflash",), "readonly": ("yes",)}
    assert not caps("bhyve_basic.x86_64.xml").loader.supported
    assert caps("bhyve_fbuf.x86_64.xml").graphics.enums == {"type": ("vnc",)}
    hv = caps("hyperv_2019.x86_64.xml")
    assert hv.domain == "hyperv" and hv.disk.enums["bus"] == ("ide", "scsi", "fdc") and not hv.loader.supported


@pytest.mark.parametrize("fixture", ["bhyve_uefi.x86_64.xml", "bhyve_fbuf.x86_64.xml"])
def test_rendered_bhyve_domain_fits_a_bhyve_host_with_a_boot_rom(fixture: str) -> None:
    assert messages(BHYVE, caps(fixture)) == []


def test_rendered_hyperv_domain_fits_the_hyperv_driver() -> None:
    assert messages(HYPERV, caps("hyperv_2019.x86_64.xml")) == []


def test_uefi_domain_is_refused_by_a_bhyve_without_boot_rom() -> None:
    assert messages(BHYVE, caps("bhyve_basic.x86_64.xml")) == [
        "VirtualMachine 'vm1': os/loader='/usr/local/share/uefi-firmware/BHYVE_UEFI.fd' is invalid; allowed: "
        "no <loader> (the bhyve host's domain capabilities: <loader supported='no'/>)"]


# Negative controls: one mutation of a rendered domain, the one message it must give.
BHYVE_MUTATIONS = [
    ("ide-disk", ("bus='virtio'", "bus='ide'"),
     "devices/disk[1]/target/@bus='ide' is invalid; allowed: one of 'virtio', 'sata' (the bhyve host's domain "
     "capabilities)"),
    ("ide-by-target-name", ("<target dev='vda' bus='virtio'/>", "<target dev='hda'/>"),
     "devices/disk[1]/target/@bus='ide' is invalid"),
    ("floppy", ("device='cdrom'", "device='floppy'"),
     "devices/disk[2]/@device='floppy' is invalid; allowed: one of 'disk', 'cdrom'"),
    ("block-disk", ("<disk type='file' device='disk'>", "<disk type='block' device='disk'>"),
     "devices/disk[1]/@type='block' is invalid; allowed: one of 'file', 'volume' (libvirt's bhyve driver"),
    ("pty-serial", ("<serial type='nmdm'>", "<serial type='pty'>"),
     "devices/serial[1]/@type='pty' is invalid; allowed: one of 'nmdm', 'tcp' (libvirt's bhyve driver"),
    ("com3", ("<target port='0'/>", "<target port='2'/>"),
     "devices/serial[1]/target/@port='2' is invalid; allowed: one of '0', '1'"),
    ("kernel-boot", ("</os>", "  <kernel>/boot/vmlinuz</kernel>\n  </os>"),
     "os/kernel='/boot/vmlinuz' is invalid; allowed: no <kernel>"),
    ("loader-rom-type", ("type='pflash'", "type='rom'"), "os/loader/@type='rom' is invalid; allowed: one of 'pflash'"),
    ("vnc-without-fbuf", ("  </devices>", "    <graphics type='vnc' port='5904'/>\n  </devices>"),
     "devices/graphics[1]='vnc' is invalid; allowed: no <graphics>"),
    ("domain-type", ("<domain type='bhyve'>", "<domain type='kvm'>"),
     "@type='kvm' is invalid; allowed: one of 'bhyve'"),
]


@pytest.mark.parametrize(("change", "expected"), [m[1:] for m in BHYVE_MUTATIONS], ids=[m[0] for m in BHYVE_MUTATIONS])
def test_bhyve_negative_controls(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in BHYVE
    found = messages(BHYVE.replace(old, new, 1), caps("bhyve_uefi.x86_64.xml"))
    assert len(found) == 1 and expected in found[0], found


HYPERV_MUTATIONS = [
    ("virtio-disk", ("<target dev='hda' bus='ide'/>", "<target dev='vda' bus='virtio'/>"),
     "devices/disk[1]/target/@bus='virtio' is invalid; allowed: one of 'ide', 'scsi', 'fdc'"),
    ("sata-cdrom", ("<target dev='hdc' bus='ide'/>", "<target dev='sda' bus='sata'/>"),
     "devices/disk[2]/target/@bus='sata' is invalid"),
    ("com0", ("<target port='1'/>", "<target port='0'/>"),
     "devices/serial[1]/target/@port='0' is invalid; allowed: one of '1', '2' (libvirt's hyperv driver"),
    ("pty-serial", ("<serial type='pipe'>", "<serial type='pty'>"), "devices/serial[1]/@type='pty' is invalid"),
    ("uefi-loader", ("</os>", "  <loader readonly='yes' type='pflash'>/x.fd</loader>\n  </os>"),
     "os/loader='/x.fd' is invalid; allowed: no <loader>"),
]


@pytest.mark.parametrize(("change", "expected"), [m[1:] for m in HYPERV_MUTATIONS],
                         ids=[m[0] for m in HYPERV_MUTATIONS])
def test_hyperv_negative_controls(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in HYPERV
    found = messages(HYPERV.replace(old, new, 1), caps("hyperv_2019.x86_64.xml"))
    assert len(found) == 1 and expected in found[0], found


def test_the_driver_floor_refuses_an_ide_disk_on_bhyve_as_render_would() -> None:
    floor = driver_caps("bhyve")
    assert floor is not None and driver_caps("kvm") is None
    check(BHYVE, floor)
    with pytest.raises(SpecError, match=r"^VirtualMachine 'vm1': devices/disk\[1\]/target/@bus='ide' is invalid; "
                                        r"allowed: one of 'virtio', 'sata'"):
        check(BHYVE.replace("bus='virtio'", "bus='ide'"), floor)


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ok.xml").write_text(BHYVE)
    (tmp_path / "ide.xml").write_text(BHYVE.replace("bus='virtio'", "bus='ide'"))
    uefi = str(CAPS_DIR / "bhyve_uefi.x86_64.xml")
    assert main([uefi, str(tmp_path / "ok.xml")]) == 0
    assert main([uefi, str(tmp_path / "ok.xml"), str(tmp_path / "ide.xml")]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'ok.xml'}: fits {uefi}" in out and "target/@bus='ide' is invalid" in out
