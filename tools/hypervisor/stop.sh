#!/usr/bin/env bash
# Stop the libvirtd and virtlogd that tools/hypervisor/start.sh started, idempotently.
#
#   tools/hypervisor/stop.sh
#
# Only the daemons recorded in /run/ringzero/libvirt.pids (and still alive under those
# names) are stopped; a libvirt run by systemd or started by someone else is left alone.
# Running guests are not touched: with QEMU processes still alive virtlogd (which holds
# their console logs) is kept running and said so. The qemu.conf block stays (it only
# matters for the next start; start.sh rewrites or removes it).
set -euo pipefail

pids_file=/run/ringzero/libvirt.pids
log() { printf '[hypervisor %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [ ! -r "$pids_file" ]; then
  log "nothing to stop: no libvirt started by ringzero ($pids_file absent)"
  exit 0
fi
virtlogd="" libvirtd=""
# shellcheck disable=SC1090
. "$pids_file"

stop_one() {   # name pid
  local name=$1 pid=$2
  if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]; then
    log "$name: not running (recorded pid ${pid:-none})"; return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 150); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || { log "stopped $name (pid $pid)"; return 0; }
    sleep 0.1
  done
  log "$name (pid $pid) ignored SIGTERM for 15 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

stop_one libvirtd "$libvirtd"
# QEMU processes libvirt started run as libvirt-qemu (or root with -name guest=...).
if pgrep -f -- '-name guest=' >/dev/null 2>&1; then
  log "QEMU guests still running (pgrep -af -- '-name guest='): virtlogd (pid ${virtlogd:-?}) kept for their logs"
  printf 'virtlogd=%s\nlibvirtd=\n' "$virtlogd" >"$pids_file"
  exit 0
fi
stop_one virtlogd "$virtlogd"
rm -f "$pids_file"
