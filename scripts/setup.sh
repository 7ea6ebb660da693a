#!/usr/bin/env bash
# Sets up a Debian/Ubuntu machine to run the harness, idempotently, and says what it did:
#   - Debian packages it needs: iproute2 (ip netns; tc for bandwidth), iptables, util-linux (nsenter, unshare),
#     procps (sysctl), tcpdump (--pcap), gcc/make/libc headers (the native probe);
#   - npm dependencies (npm ci) and the build (the C probe and the TypeScript, npm run build);
#   - with --docker: Docker's engine (docker.io, started when not running) and the images the
#     container targets use (scripts/docker-setup.sh, npm run images).
# Needs root: the harness makes network namespaces and iptables rules (never in the host's own).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

with_docker=false
for a in "$@"; do
  case "$a" in
    --docker) with_docker=true ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) die "unknown option $a (known: --docker)" ;;
  esac
done

[[ $(id -u) -eq 0 ]] || die "must run as root (try: sudo bash $0)"

# command → Debian package that provides it
declare -A need=(
  [ip]=iproute2 [tc]=iproute2 [iptables]=iptables [nsenter]=util-linux [unshare]=util-linux
  [sysctl]=procps [tcpdump]=tcpdump [gcc]=gcc [make]=make
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# Kernel headers: sock_diag for the state watcher, nfnetlink_queue for the latency delayer.
[[ -f /usr/include/linux/inet_diag.h && -f /usr/include/linux/netfilter/nfnetlink_queue.h ]] || missing+=(linux-libc-dev)
[[ -f /usr/include/stdio.h ]] || missing+=(libc6-dev)
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages already installed"
fi

command -v node >/dev/null 2>&1 || die "node not found: install Node.js >= 20"
major=$(node -p 'process.versions.node.split(".")[0]')
((major >= 20)) || die "Node.js $(node --version) is too old: the harness needs >= 20"

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
else
  say "npm dependencies up to date"
fi

say "building the probe and the TypeScript (npm run build)"
npm run build --silent

if $with_docker; then
  bash scripts/docker-setup.sh
  say "building the container images (npm run images)"
  node dist/harness/cli.js images build
fi
say "ready: node dist/harness/cli.js doctor"
