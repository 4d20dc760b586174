"""ServiceSpec: a workload the node runs as a systemd service, so policies can confine it.

Slices place services (`SliceSpec.services`), seccomp profiles filter them
(`SeccompProfileSpec.services`); a ServiceSpec declares such a service when ringzero should
also install it. Services that already exist on the node need no ServiceSpec.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from ...spec._check import Ctx

SERVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@_.:-]{0,240}\.service$")
SERVICE_ALLOWED = "a systemd service unit name of letters, digits and @ _ . : - ending in '.service'"
RESTART = ("always", "on-failure", "no")
_ARG_RE = re.compile(r"^[A-Za-z0-9._/@+=:,-]+$")
ARG_ALLOWED = (
    "words of letters, digits and . _ / @ + = : , - separated by single spaces, the first an "
    "absolute path (no quotes, '$', '%', ';', '#', backslashes or newlines)"
)
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# Units the OS owns: systemd 252's own (units/ in its source: systemd-*, getty@, serial-getty@,
# user@, modprobe@, emergency, rescue, ...) and those Debian 12 packages ship in
# /lib/systemd/system (base system, openssh-server, cron, dbus, rsyslog, ifupdown, apparmor,
# apt, libvirt-daemon-system, qemu-guest-agent, cloud-init, chrony/ntp, nftables), as
# `ls /lib/systemd/system/*.service` lists them on Debian 12. Replacing one changes what the
# node itself runs, so it needs adopt: true.
OS_SERVICES = (
    "systemd-*", "getty@*", "serial-getty@*", "autovt@*", "container-getty@*", "console-getty.service",
    "getty-static.service", "user@*", "user-runtime-dir@*", "modprobe@*", "emergency.service", "rescue.service",
    "debug-shell.service", "initrd-*", "kmod*.service", "dbus.service", "dbus-*", "polkit.service",
    "ssh.service", "ssh@*", "sshd.service", "cron.service", "anacron.service", "rsyslog.service",
    "networking.service", "ifup@*", "ifupdown-*", "apparmor.service", "apt-daily.service",
    "apt-daily-upgrade.service", "unattended-upgrades.service", "dpkg-db-backup.service", "man-db.service",
    "logrotate.service", "e2scrub*", "fstrim.service", "hwclock.service", "procps.service", "rc-local.service",
    "cryptdisks*.service", "console-setup.service", "keyboard-setup.service", "ldconfig.service",
    "libvirtd.service", "libvirt-guests.service", "virtlogd.service", "virtlockd.service", "virt*d.service",
    "qemu-guest-agent.service", "cloud-init*.service", "cloud-config.service", "cloud-final.service",
    "chrony.service", "ntp.service", "ntpsec.service", "nftables.service", "ufw.service",
    "networkd-dispatcher.service", "NetworkManager*", "wpa_supplicant*", "udisks2.service", "accounts-daemon.service",
)
ADOPT_ALLOWED = "set adopt: true to take it over (the original is saved and restored on removal)"


def os_owned(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in OS_SERVICES)


@dataclass(frozen=True)
class ServiceSpec:
    """A long-running service unit ringzero installs, enables and starts.

    Example::

        ServiceSpec(name="web.service", exec_start="/usr/bin/python3 -m http.server 8080",
                    description="Static web server", user="www-data", max_exposure=9.0)
    """

    name: str
    exec_start: str
    description: str = ""
    user: str = "root"
    restart: str = "always"
    # Take over a unit the OS or a package installed under this name (saved, restored on removal).
    adopt: bool = False
    # The highest `systemd-analyze security` exposure (0.0 safest - 10.0) the unit may score
    # with every drop-in its node's policies write: planning the node (`pulumi preview`)
    # refuses a higher score (scored offline on the machine that plans), and a check re-scores
    # the unit on the node (`ringzero.kinds.service.exposure`).
    max_exposure: float | None = None

    def __post_init__(self) -> None:
        ctx = Ctx("Service", str(self.name))
        ctx.pattern("name", self.name, SERVICE_RE, SERVICE_ALLOWED)
        if self.name.startswith("ringzero-ebpf-"):
            raise ctx.fail("name", self.name, "a name outside 'ringzero-ebpf-*' (eBPF agents' units)")
        if not isinstance(self.adopt, bool):
            raise ctx.fail("adopt", self.adopt, "true or false")
        if os_owned(self.name) and not self.adopt:
            pattern = next(p for p in OS_SERVICES if fnmatch.fnmatchcase(self.name, p))
            raise ctx.fail("name", self.name, f"a unit the OS or its packages do not own (this one matches "
                           f"{pattern!r}), or {ADOPT_ALLOWED}")
        if not isinstance(self.exec_start, str):
            raise ctx.fail("exec_start", self.exec_start, ARG_ALLOWED)
        words = self.exec_start.split(" ")
        if not words[0].startswith("/") or not all(_ARG_RE.fullmatch(w) for w in words):
            raise ctx.fail("exec_start", self.exec_start, ARG_ALLOWED)
        ctx.abs_path("exec_start", words[0])
        ctx.text("description", self.description)
        ctx.pattern("user", self.user, _USER_RE, "a POSIX user name: a-z, 0-9, '_' and '-', at most 32")
        ctx.choice("restart", self.restart, RESTART)
        if self.max_exposure is not None:
            ctx.positive_number("max_exposure", self.max_exposure, 0.0, 10.0)
