#!/usr/bin/env bash
# Kernel interfaces the validate tier and bpftrace need on this host, idempotently:
# tracefs (syscall tracepoints attach only once it is mounted; not mounted by default here).
set -euo pipefail
if [ ! -d /sys/kernel/tracing/events ]; then
  mount -t tracefs nodev /sys/kernel/tracing || { echo "[host] ERROR: cannot mount tracefs on /sys/kernel/tracing" >&2; exit 1; }
  echo "[host] mounted tracefs on /sys/kernel/tracing" >&2
fi
