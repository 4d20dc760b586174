#!/bin/sh
# ringzero guest base image: runs INSIDE the debootstrapped rootfs (chroot), as root,
# after build.sh has copied recipe/rootfs/ over it and written /etc/apt/sources.list.
# Input: /tmp/ringzero-packages.txt (recipe/packages.txt). Services must not start here:
# build.sh installs a policy-rc.d that forbids it.
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 LANG=C.UTF-8
APT="apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"

packages=$(sed -e 's/#.*//' /tmp/ringzero-packages.txt | tr -s ' \t\n' ' ')
$APT update
# Security/point updates for what debootstrap put in, then everything else at once
# (apt picks the newest version across bookworm, -updates and -security).
$APT dist-upgrade --no-install-recommends
# shellcheck disable=SC2086
$APT install --no-install-recommends $packages

# Services: sshd and networkd (DHCP from 20-wired.network). ringzero-ssh-hostkeys.service
# (host keys when none were injected) is pulled in by ssh.service.d/10-ringzero.conf.
systemctl enable ssh.service systemd-networkd.service
# No traffic of the guest's own: no apt timers (they would fetch package lists).
systemctl mask apt-daily.timer apt-daily-upgrade.timer
# Boot to a plain multi-user system.
systemctl set-default multi-user.target

# No baked-in SSH host keys: every VM gets its own (cloud-init ssh_keys, or
# ringzero-ssh-hostkeys.service as the fallback).
rm -f /etc/ssh/ssh_host_*

# Identity: a neutral hostname (cloud-init sets the real one), an empty machine-id so
# systemd makes a new one per VM on first boot.
echo ringzero > /etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\tringzero\n::1\tlocalhost ip6-localhost ip6-loopback\n' > /etc/hosts
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
ln -s /etc/machine-id /var/lib/dbus/machine-id

# libvirt inside the guest (a guest can be a HypervisorHost): the `default` dir pool that
# ringzero's HostSpec names, defined and autostarted for the socket-activated libvirtd.
mkdir -p /var/lib/libvirt/images /etc/libvirt/storage/autostart
cat > /etc/libvirt/storage/default.xml <<'POOL'
<pool type='dir'>
  <name>default</name>
  <target><path>/var/lib/libvirt/images</path></target>
</pool>
POOL
ln -sf /etc/libvirt/storage/default.xml /etc/libvirt/storage/autostart/default.xml
# Domains nested in this (TCG) guest are test fixtures: QEMU runs as root without a
# security driver, so volumes uploaded over libvirt (root-owned, 0600) can back them.
cat >> /etc/libvirt/qemu.conf <<'QEMU'
# >>> ringzero base image: nested test domains (see tools/image/recipe/customize.sh) >>>
user = "root"
group = "root"
security_driver = "none"
# <<< ringzero <<<
QEMU

# Locale: C.UTF-8 is built in (no locale-gen).
echo 'LANG=C.UTF-8' > /etc/default/locale

# No resolver: the guest's traffic stays on the host's loopback forwards; the build
# host's resolv.conf must not leak into the image.
printf '# ringzero base image: no DNS resolver configured.\n' > /etc/resolv.conf

# Small and clean.
$APT autoremove --purge
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
       /var/lib/dpkg/*-old /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log \
       /var/log/bootstrap.log /tmp/* /var/tmp/*
find /var/log -type f -exec truncate -s 0 {} +
