#!/usr/bin/env bash
# Sets up a Debian/Ubuntu machine to run the harness, idempotently, and says what it did:
#   - Debian packages it needs: iproute2 (ip netns; tc for bandwidth), iptables, util-linux (nsenter, unshare),
#     procps (sysctl), tcpdump (--pcap, --report), gcc/make/libc headers (the native probe),
#     with --docker also chromium (the report suite opens the HTML reports in a headless browser);
#   - npm dependencies (npm ci) and the build (the C probe and the TypeScript, npm run build);
#   - with --docker: Docker's engine (docker.io, started when not running) and the images the
#     container targets use (scripts/docker-setup.sh, npm run images);
#   - `harness` on the PATH: a wrapper script in /usr/local/bin (or --bin-dir DIR) that runs this
#     checkout's dist/harness/cli.js. Remove that file to undo.
# Needs root: the harness makes network namespaces and iptables rules (never in the host's own).
set -euo pipefail

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

with_docker=false
bin_dir=/usr/local/bin
while (($#)); do
  case "$1" in
    --docker) with_docker=true ;;
    --bin-dir)
      (($# >= 2)) || die "--bin-dir needs a directory"
      bin_dir=$2
      shift
      ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown option $1 (known: --docker, --bin-dir DIR)" ;;
  esac
  shift
done
[[ -d $bin_dir ]] || die "--bin-dir: $bin_dir is not a directory"
bin_dir=$(cd "$bin_dir" && pwd)
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || die "must run as root (try: sudo bash $0)"

# command → Debian package that provides it
declare -A need=(
  [ip]=iproute2 [tc]=iproute2 [iptables]=iptables [nsenter]=util-linux [unshare]=util-linux
  [sysctl]=procps [tcpdump]=tcpdump [gcc]=gcc [make]=make
)
# The tests also open HTML reports in a real browser: with --docker (everything the tests need).
$with_docker && need[chromium]=chromium
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

# `harness` on the PATH. A wrapper, not `npm link`: npm link would also install this package
# globally (running its scripts again) and make /usr/lib/node_modules point here; a wrapper is one
# file, does not depend on dist/'s file modes, and says where it came from. A `harness` that is
# not ours (another tool of that name) is never replaced.
marker='# made by the harness setup (scripts/setup.sh); remove this file to undo'
wrapper=$bin_dir/harness
if [[ -e $wrapper ]] && ! grep -qF "$marker" "$wrapper"; then
  die "$wrapper exists and is not the harness's wrapper: remove it, or pass --bin-dir DIR (a directory on your PATH)"
fi
cli=$(pwd)/dist/harness/cli.js
printf '#!/usr/bin/env bash\n%s\nexec node %q "$@"\n' "$marker" "$cli" >"$wrapper.tmp.$$"
chmod 755 "$wrapper.tmp.$$"
mv -f "$wrapper.tmp.$$" "$wrapper"
say "harness is $wrapper (runs $cli)"
case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) say "warning: $bin_dir is not on your PATH: add it, or run $wrapper" ;;
esac

if $with_docker; then
  bash scripts/docker-setup.sh
  say "building the container images (harness images build)"
  "$wrapper" images build
fi
say "ready: harness doctor"
