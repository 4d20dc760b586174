"""A rendered domain against a host's domain capabilities (`virsh domcapabilities`) and the
rules of its libvirt driver that that document cannot express.

libvirt's schema (`virt-xml-validate`) accepts, for instance, an IDE disk on a bhyve domain;
the bhyve driver refuses it when the domain starts. This check says so before anything is
defined. Example::

    virsh -c bhyve+ssh://root@fbsd1.example/system domcapabilities > caps.xml
    ringzero render --manifest manifest.json --out review/
    python -m ringzero.domcaps caps.xml review/domain-bhyve-vm1.xml

    from ringzero.domcaps import DomainCaps, problems
    for err in problems(domain_xml, DomainCaps.parse(caps_xml)):
        print(err)   # VirtualMachine 'vm1': devices/disk[1]/target/@bus='ide' is invalid; allowed: ...
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .spec import SpecError

# A disk without bus= gets it from its target's prefix (virDomainDiskDefAssignAddress and the
# parser's default bus); longest prefix first.
_BUS_BY_PREFIX = (("xvd", "xen"), ("hd", "ide"), ("sd", "scsi"), ("vd", "virtio"), ("fd", "fdc"), ("nvme", "nvme"))


@dataclass(frozen=True)
class Feature:
    """One `supported=` element of the capabilities: its enums (name -> allowed values)."""

    supported: bool
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class DomainCaps:
    """What `virsh domcapabilities` says one host's driver accepts."""

    domain: str
    arch: str | None
    loader: Feature
    disk: Feature
    graphics: Feature
    video: Feature
    hostdev: Feature

    @classmethod
    def parse(cls, text: str) -> DomainCaps:
        root = ET.fromstring(text)
        if root.tag != "domainCapabilities":
            raise ValueError(f"not a domainCapabilities document (root <{root.tag}>)")
        return cls(
            domain=(root.findtext("domain") or "").strip(),
            arch=(root.findtext("arch") or "").strip() or None,
            loader=_feature(root.find("os/loader")),
            disk=_feature(root.find("devices/disk")),
            graphics=_feature(root.find("devices/graphics")),
            video=_feature(root.find("devices/video")),
            hostdev=_feature(root.find("devices/hostdev")),
        )


def _feature(el: ET.Element | None) -> Feature:
    """An absent element is not supported (libvirt leaves out what a driver does not report)."""
    if el is None:
        return Feature(False)
    enums = {e.get("name", ""): tuple((v.text or "").strip() for v in e.findall("value")) for e in el.findall("enum")}
    return Feature(el.get("supported") == "yes", enums, tuple((v.text or "").strip() for v in el.findall("value")))


@dataclass(frozen=True)
class DriverRules:
    """What a driver refuses or ignores that domcapabilities does not report."""

    serial_types: tuple[str, ...]
    serial_ports: tuple[int, ...]
    disk_types: tuple[str, ...]
    # The disk buses every release of the driver accepts: the check's floor when no host's
    # domcapabilities are given (a host's own document may allow more, e.g. bhyve's nvme).
    disk_buses: tuple[str, ...]
    why: str


# bhyve: bhyve_command.c (bhyveBuildConsoleArgStr: nmdm, and tcp since 11.6.0; "only two serial
# ports are supported", com1/com2 = ports 0 and 1; disks "unsupported disk type" unless file or
# volume) and bhyveload/UEFI boot (no <kernel> from a host path).
# hyperv: hyperv_driver.c (hypervDomainAttachSerial: named pipes on 'COM 1'/'COM 2', i.e. ports 1
# and 2; hypervDomainAttachStorageVolume: file (a VHD/VHDX) or block (a physical disk); DefineXML
# never reads <os>, so a <kernel> would be dropped silently).
DRIVER_RULES: dict[str, DriverRules] = {
    "bhyve": DriverRules(("nmdm", "tcp"), (0, 1), ("file", "volume"), ("virtio", "sata"),
                         "libvirt's bhyve driver, bhyve_command.c"),
    "hyperv": DriverRules(("pipe",), (1, 2), ("file", "block"), ("ide", "scsi", "fdc"),
                          "libvirt's hyperv driver, hyperv_driver.c"),
}


def driver_caps(domain_type: str) -> DomainCaps | None:
    """The floor of what the driver of `domain_type` accepts, for when no host's document is at
    hand (`ringzero render`): its disk buses, for bhyve the UEFI boot ROM (bhyve has had it since
    FreeBSD 11.0); no graphics or host device."""
    rules = DRIVER_RULES.get(domain_type)
    if rules is None:
        return None
    return DomainCaps(domain_type, None, Feature(domain_type == "bhyve"),
                      Feature(True, {"bus": rules.disk_buses}), Feature(False), Feature(False), Feature(False))


def problems(domain_xml: str, caps: DomainCaps) -> list[SpecError]:
    """Every way `domain_xml` exceeds `caps` or its driver's rules, as SpecErrors naming the
    element (`devices/disk[2]/target/@bus`), its value and what the host allows."""
    root = ET.fromstring(domain_xml)
    name = (root.findtext("name") or "?").strip()
    out: list[SpecError] = []
    host = f"the {caps.domain} host's domain capabilities"

    def fail(where: str, value: object, allowed: str) -> None:
        out.append(SpecError("VirtualMachine", name, where, value, allowed))

    def one_of(values: Sequence[str], source: str = host) -> str:
        return ("one of " + ", ".join(repr(v) for v in values) if values else "nothing") + f" ({source})"

    if root.get("type") != caps.domain:
        fail("@type", root.get("type"), one_of([caps.domain]))
    arch = root.find("os/type")
    if caps.arch and arch is not None and arch.get("arch", caps.arch) != caps.arch:
        fail("os/type/@arch", arch.get("arch"), one_of([caps.arch]))
    loader = root.find("os/loader")
    if loader is not None:
        if not caps.loader.supported:
            fail("os/loader", (loader.text or "").strip(), f"no <loader> ({host}: <loader supported='no'/>)")
        else:
            for attr in ("type", "readonly"):
                allowed = caps.loader.enums.get(attr)
                if loader.get(attr) is not None and allowed is not None and loader.get(attr) not in allowed:
                    fail(f"os/loader/@{attr}", loader.get(attr), one_of(allowed))
    disks = root.findall("devices/disk")
    rules = DRIVER_RULES.get(caps.domain)
    for i, disk in enumerate(disks, 1):
        where = f"devices/disk[{i}]"
        if not caps.disk.supported:
            fail(where, disk.get("device", "disk"), f"no disks ({host})")
            continue
        device = disk.get("device", "disk")
        if "diskDevice" in caps.disk.enums and device not in caps.disk.enums["diskDevice"]:
            fail(f"{where}/@device", device, one_of(caps.disk.enums["diskDevice"]))
        target = disk.find("target")
        bus = None if target is None else target.get("bus") or _bus_of(target.get("dev", ""))
        if "bus" in caps.disk.enums and bus not in caps.disk.enums["bus"]:
            fail(f"{where}/target/@bus", bus, one_of(caps.disk.enums["bus"]))
        if rules and disk.get("type", "file") not in rules.disk_types:
            fail(f"{where}/@type", disk.get("type"), one_of(rules.disk_types, rules.why))
    for kind, feature in (("graphics", caps.graphics), ("video", caps.video), ("hostdev", caps.hostdev)):
        for i, el in enumerate(root.findall(f"devices/{kind}"), 1):
            model = el.find("model")
            value = el.get("type") or (model.get("type") if model is not None else None)
            enum = feature.enums.get("modelType" if kind == "video" else "type")
            if not feature.supported:
                fail(f"devices/{kind}[{i}]", value, f"no <{kind}> ({host})")
            elif enum is not None and value not in enum:
                fail(f"devices/{kind}[{i}]/@type", value, one_of(enum))
    if rules:
        if root.find("os/kernel") is not None:
            fail("os/kernel", (root.findtext("os/kernel") or "").strip(),
                 f"no <kernel> ({rules.why}: the VM boots its disk)")
        for i, serial in enumerate(root.findall("devices/serial"), 1):
            if serial.get("type") not in rules.serial_types:
                fail(f"devices/serial[{i}]/@type", serial.get("type"), one_of(rules.serial_types, rules.why))
            target = serial.find("target")
            port = None if target is None else target.get("port")
            if port is not None and (not port.isdigit() or int(port) not in rules.serial_ports):
                fail(f"devices/serial[{i}]/target/@port", port, one_of([str(p) for p in rules.serial_ports], rules.why))
    return out


def _bus_of(dev: str) -> str | None:
    return next((bus for prefix, bus in _BUS_BY_PREFIX if dev.startswith(prefix)), None)


def check(domain_xml: str, caps: DomainCaps) -> None:
    """Raise the first problem (a SpecError, as at preview); return when there is none."""
    found = problems(domain_xml, caps)
    if found:
        raise found[0]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ringzero.domcaps",
                                description="Check rendered domains against `virsh domcapabilities` output.")
    p.add_argument("caps", help="the host's `virsh domcapabilities` XML")
    p.add_argument("domains", nargs="+", help="rendered domain XML files (`ringzero render`)")
    args = p.parse_args(argv)
    caps = DomainCaps.parse(Path(args.caps).read_text())
    bad = 0
    for path in args.domains:
        found = problems(Path(path).read_text(), caps)
        bad += bool(found)
        for err in found:
            print(f"{path}: {err}")
        if not found:
            print(f"{path}: fits {args.caps}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
