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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
