#!/usr/bin/env bash
# Install the Debian packages in packages.txt that are missing; a no-op when all are there.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mapfile -t wanted < <(grep -v '^\s*#' "$here/packages.txt" | grep -v '^\s*$')
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[packages] all ${#wanted[@]} Debian packages present" >&2
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "[packages] ERROR: need root to install: ${missing[*]}" >&2; exit 1; }
echo "[packages] installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages installed for their binaries only (tests start them by hand): a service they ship is
# neither started nor left enabled on this machine. Only what this install added is undone: an
# existing policy-rc.d is left alone, a service enabled before is not disabled.
BINARY_ONLY_SERVICES=(openssh-server:ssh.service)
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# ringzero setup: no service starts during this install\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for entry in "${BINARY_ONLY_SERVICES[@]}"; do
  pkg=${entry%%:*}; unit=${entry#*:}
  if printf '%s\n' "${missing[@]}" | grep -qx "$pkg"; then
    deb-systemd-helper disable "$unit" >/dev/null 2>&1 || true
    echo "[packages] $pkg: installed for its binary only; $unit neither started nor enabled" >&2
  fi
done
