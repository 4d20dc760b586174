#!/usr/bin/env bash
# Make qemu:///system usable on this host, idempotently.
#
#   tools/hypervisor/start.sh
#
# - Host with systemd as PID 1: touches no configuration and restarts nothing; only
#   starts libvirtd.service if it is not running, then checks the connection.
# - Host without systemd (containers, sandboxes): starts `virtlogd -d` and `libvirtd -d`
#   unless they already run, recording what it started in /run/ringzero/libvirt.pids
#   (tools/hypervisor/stop.sh stops exactly those). Applies qemu.conf sandbox settings
#   only when the host needs them, in a marked "ringzero" block, and logs why.
# - Waits (bounded: RINGZERO_LIBVIRT_TIMEOUT, default 90 s) until
#   `virsh -c qemu:///system list` works, else fails naming the log to read.
# - Ensures the `default` storage pool (dir, /var/lib/libvirt/images) is defined,
#   started and autostarted.
set -euo pipefail

URI=qemu:///system
timeout_s=${RINGZERO_LIBVIRT_TIMEOUT:-90}
state_dir=/run/ringzero
pids_file=$state_dir/libvirt.pids
log_dir=/var/log/libvirt
libvirtd_log=$log_dir/ringzero-libvirtd.log
virtlogd_log=$log_dir/ringzero-virtlogd.log
qemu_conf=${RINGZERO_QEMU_CONF:-/etc/libvirt/qemu.conf}
pool_dir=/var/lib/libvirt/images
begin_mark='# >>> ringzero: tools/hypervisor/start.sh (remove this block to undo) >>>'
end_mark='# <<< ringzero <<<'

log() { printf '[hypervisor %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

virsh_ok() { timeout 30 virsh -q -c "$URI" "${@:-list}" >/dev/null 2>&1; }

# pid from a pidfile if that process is alive and is $2
live_pid() {
  local pidfile=$1 name=$2 pid
  [ -r "$pidfile" ] || return 1
  pid=$(tr -dc 0-9 <"$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ] || return 1
  echo "$pid"
}

wait_for_libvirt() {   # $1: log to point at
  local deadline=$(( $(date +%s) + timeout_s ))
  until virsh_ok list; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      [ -r "$1" ] && { log "last lines of $1:"; tail -n 20 "$1" >&2; }
      die "virsh -c $URI list still fails after ${timeout_s}s; see $1"
    fi
    if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
      [ -r "$1" ] && tail -n 20 "$1" >&2
      die "libvirtd (pid $2) exited; see $1"
    fi
    sleep 0.5
  done
}

ensure_default_pool() {
  if ! virsh_ok pool-info default; then
    mkdir -p "$pool_dir"
    virsh -q -c "$URI" pool-define-as default dir --target "$pool_dir" >/dev/null
    log "defined storage pool default (dir $pool_dir)"
  fi
  if [ "$(virsh -c "$URI" pool-info default | awk '/^State:/ { print $2 }')" != running ]; then
    virsh -q -c "$URI" pool-build default >/dev/null 2>&1 || true
    virsh -q -c "$URI" pool-start default >/dev/null
    log "started storage pool default"
  fi
  if [ "$(virsh -c "$URI" pool-info default | awk '/^Autostart:/ { print $2 }')" != yes ]; then
    virsh -q -c "$URI" pool-autostart default >/dev/null
    log "storage pool default set to autostart"
  fi
}

command -v virsh >/dev/null || die "virsh missing: install libvirt-clients (tools/host/packages.txt)"

# --- host managed by systemd: nothing disruptive ----------------------------------------
if [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
  if virsh_ok list; then
    log "systemd host: libvirt already answers on $URI (configuration left as is)"
  else
    log "systemd host: starting libvirtd.service (configuration left as is)"
    systemctl start libvirtd.service || die "systemctl start libvirtd.service failed; see journalctl -u libvirtd"
    wait_for_libvirt "journalctl -u libvirtd"
  fi
  ensure_default_pool
  log "ready: $URI"
  exit 0
fi

# --- no systemd: run the daemons ourselves ----------------------------------------------
[ "$(id -u)" = 0 ] || die "without systemd, starting libvirtd needs root"
for t in libvirtd virtlogd; do
  command -v "$t" >/dev/null || die "$t missing: install libvirt-daemon-system (tools/host/packages.txt)"
done
getent passwd libvirt-qemu >/dev/null || die "user libvirt-qemu missing: install libvirt-daemon-system"
mkdir -p "$state_dir" "$log_dir"

# qemu.conf: what this host needs, and why.
strip_block() { awk -v b="$begin_mark" -v e="$end_mark" '$0 == b { in_b = 1 } !in_b { print } $0 == e { in_b = 0 }'; }
settings=() reasons=()
if [ -r /sys/kernel/security/lsm ]; then
  lsms=$(cat /sys/kernel/security/lsm); lsm_src="active LSMs: $lsms"
else
  lsms=""; lsm_src="securityfs not mounted at /sys/kernel/security"
fi
if [[ ",$lsms," == *,apparmor,* ]] && [ -r /sys/kernel/security/apparmor/profiles ]; then :
elif [ -e /sys/fs/selinux/enforce ]; then :
else
  settings+=('security_driver = "none"')
  reasons+=("no usable AppArmor or SELinux ($lsm_src; no /sys/fs/selinux)")
fi
cgfs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null || echo unknown)
if [ "$cgfs" != cgroup2fs ]; then
  settings+=('cgroup_controllers = [ ]')
  reasons+=("cgroup v1/hybrid (/sys/fs/cgroup is $cgfs) without systemd to place machines")
fi
# Keep a setting an administrator made outside our block.
block_settings=() block_reasons=()
for i in ${settings[@]+"${!settings[@]}"}; do
  k=${settings[$i]%% *}
  if strip_block <"$qemu_conf" | grep -Eq "^[[:space:]]*${k}[[:space:]]*="; then
    log "qemu.conf already sets $k outside the ringzero block: left as is"
  else
    block_settings+=("${settings[$i]}") block_reasons+=("${reasons[$i]}")
  fi
done
want_block=""
if [ ${#block_settings[@]} -gt 0 ]; then
  want_block=$(
    echo "$begin_mark"
    for r in "${block_reasons[@]}"; do echo "# why: $r"; done
    printf '%s\n' "${block_settings[@]}"
    echo "$end_mark")
fi
have_block=$(awk -v b="$begin_mark" -v e="$end_mark" '$0 == b { in_b = 1 } in_b { print } $0 == e { in_b = 0 }' "$qemu_conf")
conf_changed=0
if [ "$want_block" != "$have_block" ]; then
  cp -p "$qemu_conf" "$qemu_conf.ringzero-tmp"
  strip_block <"$qemu_conf" >"$qemu_conf.ringzero-tmp"
  [ -n "$want_block" ] && printf '%s\n' "$want_block" >>"$qemu_conf.ringzero-tmp"
  mv "$qemu_conf.ringzero-tmp" "$qemu_conf"
  conf_changed=1
  if [ -n "$want_block" ]; then
    for r in "${block_reasons[@]}"; do log "qemu.conf: $r"; done
    log "qemu.conf: wrote ringzero block to $qemu_conf: ${block_settings[*]}"
  else
    log "qemu.conf: host needs no sandbox settings; removed the ringzero block"
  fi
elif [ -n "$want_block" ]; then
  log "qemu.conf: ringzero block in place: ${block_settings[*]}"
else
  log "qemu.conf: host needs no sandbox settings (LSM usable, cgroup v2)"
fi

# What ringzero started earlier (pids recorded and still those daemons).
ours_virtlogd="" ours_libvirtd=""
if [ -r "$pids_file" ]; then
  # shellcheck disable=SC1090
  . "$pids_file"
  [ -n "${virtlogd:-}" ] && [ "$(cat "/proc/$virtlogd/comm" 2>/dev/null)" = virtlogd ] && ours_virtlogd=$virtlogd
  [ -n "${libvirtd:-}" ] && [ "$(cat "/proc/$libvirtd/comm" 2>/dev/null)" = libvirtd ] && ours_libvirtd=$libvirtd
fi
record() { printf 'virtlogd=%s\nlibvirtd=%s\n' "$ours_virtlogd" "$ours_libvirtd" >"$pids_file"; }

hide_kvm_marker=$state_dir/libvirtd-hide-kvm

# On hosts where /dev/kvm exists but cannot run guests (nested sandboxes such as these
# machines), every libvirt capabilities call stalls ~8 s while QEMU probes KVM, and
# pulumi-libvirt makes several per domain (minutes per VM). Measured, not guessed: when a
# second `virsh capabilities` (cache warm) takes over 3 s, restart the libvirtd we started
# without /dev/kvm. RINGZERO_HIDE_KVM=0 disables this, =1 forces it.
caps_seconds() {
  local t0 t1
  t0=$(date +%s%N); timeout 60 virsh -q -c "$URI" capabilities >/dev/null 2>&1 || true; t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000000 ))
}

start_daemon() {   # name logfile -> prints pid
  local name=$1 logf=$2 pid i
  : >>"$logf"
  if [ "$name" = libvirtd ] && [ -e "$hide_kvm_marker" ] && [ -e /dev/kvm ]; then
    # See hide_kvm_if_it_stalls: libvirtd gets a mount namespace where /dev/kvm is
    # /dev/null, so it sees no KVM (guests use TCG, domain type qemu, as declared here).
    LIBVIRT_LOG_OUTPUTS="3:file:$logf" unshare -m --propagation private \
      sh -c 'mount --bind /dev/null /dev/kvm && exec libvirtd -d' </dev/null >>"$logf" 2>&1 ||
      die "$name -d (without /dev/kvm) failed; see $logf"
  else
    LIBVIRT_LOG_OUTPUTS="3:file:$logf" "$name" -d </dev/null >>"$logf" 2>&1 ||
      die "$name -d failed; see $logf"
  fi
  for i in $(seq 1 100); do
    pid=$(live_pid "/run/$name.pid" "$name") && { echo "$pid"; return 0; }
    sleep 0.1
  done
  die "$name did not come up (no live /run/$name.pid); see $logf"
}

if pid=$(live_pid /run/virtlogd.pid virtlogd); then
  log "virtlogd already running (pid $pid${ours_virtlogd:+, started by ringzero})"
else
  ours_virtlogd=$(start_daemon virtlogd "$virtlogd_log"); record
  log "started virtlogd (pid $ours_virtlogd, log $virtlogd_log)"
fi

if pid=$(live_pid /run/libvirtd.pid libvirtd); then
  if [ "$conf_changed" = 1 ]; then
    if [ "$pid" = "$ours_libvirtd" ]; then
      log "restarting libvirtd (pid $pid, started by ringzero) to apply qemu.conf"
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && die "libvirtd (pid $pid) did not stop; see $libvirtd_log"
      ours_libvirtd=$(start_daemon libvirtd "$libvirtd_log"); record
      log "started libvirtd (pid $ours_libvirtd, log $libvirtd_log)"
    else
      log "WARNING: libvirtd (pid $pid) was not started by ringzero: restart it to apply qemu.conf"
    fi
  else
    log "libvirtd already running (pid $pid${ours_libvirtd:+, started by ringzero})"
  fi
else
  ours_libvirtd=$(start_daemon libvirtd "$libvirtd_log"); record
  log "started libvirtd (pid $ours_libvirtd, log $libvirtd_log)"
fi

t0=$EPOCHREALTIME
wait_for_libvirt "$libvirtd_log" "$(live_pid /run/libvirtd.pid libvirtd || true)"
log "virsh -c $URI answers (waited $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s)"

restart_ours() {
  local pid=$1
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && die "libvirtd (pid $pid) did not stop; see $libvirtd_log"
  ours_libvirtd=$(start_daemon libvirtd "$libvirtd_log"); record
  wait_for_libvirt "$libvirtd_log" "$ours_libvirtd"
}
pid=$(live_pid /run/libvirtd.pid libvirtd || true)
if [ -e /dev/kvm ] && [ ! -e "$hide_kvm_marker" ] && [ "$pid" = "$ours_libvirtd" ] && [ "${RINGZERO_HIDE_KVM:-auto}" != 0 ]; then
  caps_seconds >/dev/null   # first call may fill libvirt's capability cache
  secs=$(caps_seconds)
  if [ "${RINGZERO_HIDE_KVM:-auto}" = 1 ] || [ "$secs" -ge 3 ]; then
    log "virsh capabilities took ${secs}s: /dev/kvm stalls QEMU's probes here; restarting libvirtd without it (guests use TCG)"
    : >"$hide_kvm_marker"
    restart_ours "$pid"
    log "libvirtd restarted without /dev/kvm (pid $ours_libvirtd); capabilities now take $(caps_seconds)s"
  fi
fi
ensure_default_pool
log "ready: $URI"
