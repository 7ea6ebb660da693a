#!/usr/bin/env bash
# Prepare Docker for harness container targets.
#
#   - installs Debian's docker.io and debootstrap when missing (apt-get, non-interactive);
#   - starts the Docker engine when `docker info` fails: through systemd when systemd is PID 1,
#     otherwise `dockerd` in the background with its log in /var/log/dockerd.log;
#   - waits (max 60 s) until `docker info` answers.
#
# Idempotent: run it as often as you like; it only does what is missing and says what it did.
# Needs root. Does not touch iptables or sysctls itself (dockerd adds its own rules when it starts).
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
WAIT_SECS=${DOCKER_WAIT_SECS:-60}

say() { printf 'docker-setup: %s\n' "$*"; }
die() { printf 'docker-setup: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (try: sudo bash $0)"

# --- 1. packages -------------------------------------------------------------------------------
missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
have_pkg docker.io || command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
have_pkg debootstrap || command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)

if ((${#missing[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  say "installed ${missing[*]}"
else
  say "docker.io and debootstrap already installed"
fi

command -v docker >/dev/null 2>&1 || die "docker CLI not found after install"
command -v dockerd >/dev/null 2>&1 || die "dockerd not found after install"

# --- 2. engine ---------------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  say "dockerd already running ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
  exit 0
fi

systemd_pid1=false
if [[ -d /run/systemd/system ]] && [[ $(cat /proc/1/comm 2>/dev/null || true) == systemd ]]; then
  systemd_pid1=true
fi

# A dockerd we (or someone) started earlier that is still initialising: its pid file names it.
dockerd_alive=false
if [[ -r /var/run/docker.pid ]]; then
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null || true) == dockerd ]]; then
    dockerd_alive=true
  fi
fi

if $systemd_pid1; then
  say "starting docker through systemd (systemctl start docker)"
  systemctl start docker
elif $dockerd_alive; then
  say "a dockerd process exists but does not answer yet; waiting for it (log: $DOCKERD_LOG)"
else
  # runc needs a cgroup hierarchy. A minimal init may not have mounted one: mount the unified
  # (v2) hierarchy, which dockerd 20.10+ supports. Only when nothing is mounted there at all.
  if ! grep -q ' /sys/fs/cgroup ' /proc/mounts; then
    say "mounting the cgroup2 hierarchy on /sys/fs/cgroup"
    mount -t cgroup2 cgroup2 /sys/fs/cgroup || say "warning: could not mount cgroups; containers may fail to start"
  fi
  say "starting dockerd in the background (no systemd as PID 1); log: $DOCKERD_LOG"
  mkdir -p "$(dirname "$DOCKERD_LOG")"
  # setsid + nohup: the daemon must outlive this script and its terminal.
  log_start=1
  [[ -f $DOCKERD_LOG ]] && log_start=$(($(wc -l <"$DOCKERD_LOG") + 1))
  setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  started_pid=$!
  say "dockerd pid $started_pid"
fi

show_log() {
  local from=${log_start:-1}
  echo "--- dockerd errors ($DOCKERD_LOG) ---" >&2
  # This attempt's lines only; errors first, they say why.
  tail -n "+$from" "$DOCKERD_LOG" 2>/dev/null | grep -E 'level=(error|fatal)|failed to start' | tail -n 10 >&2 || true
}

for ((i = 0; i < WAIT_SECS; i++)); do
  if docker info >/dev/null 2>&1; then
    say "dockerd ready after ${i}s ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
  fi
  if [[ -n ${started_pid:-} ]] && ! kill -0 "$started_pid" 2>/dev/null; then
    show_log
    die "dockerd exited during start-up (full log: $DOCKERD_LOG)"
  fi
  sleep 1
done

show_log
die "dockerd did not answer within ${WAIT_SECS}s (full log: $DOCKERD_LOG)"
