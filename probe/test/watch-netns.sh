#!/bin/sh
# `harness-probe watch --netns A --netns B`: one process watches two namespaces.
# - each namespace's events carry its index and only its own sockets;
# - the counters of each (/proc/net files opened while in it) stay bound to it after the watcher
#   went back to its own namespace: they equal `nsenter --net=… cat /proc/net/snmp`;
# - bad paths exit 2; stdin EOF stops it.
# The namespaces are anonymous (unshare --net, held by a sleep): nothing under /run/netns, and
# nothing is changed in the namespace this script runs in. Needs root; skipped otherwise.
# Usage: watch-netns.sh PATH/TO/harness-probe
set -u
PROBE=${1:-./build/harness-probe}
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || ! command -v nsenter >/dev/null || ! command -v ip >/dev/null; then
    echo "watch-netns: skipped (needs root, unshare, nsenter and ip)"
    exit 0
fi
TMP=$(mktemp -d)
pass=0
fail=0
A= B= SRV= W=
cleanup() {
    for p in $W $SRV $A $B; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { desc=$1; shift; if "$@"; then ok; else bad "$desc"; fi; }
ino() { stat -L -c %i "$1"; }
wait_for() { # PATTERN FILE: up to 2 s
    i=0
    while ! grep -q -- "$1" "$2" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 40 ] && return 1; sleep 0.05
    done
}

HOST=$(ino /proc/self/ns/net)
# holder: sets H to a sleeping process in a namespace of its own (unshare runs before exec, a
# moment after the fork, so wait until its namespace is no longer ours)
holder() {
    unshare --net sleep 300 </dev/null >/dev/null 2>&1 &
    H=$!
    i=0
    while [ "$(ino /proc/$H/ns/net 2>/dev/null)" = "$HOST" ]; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "watch-netns: unshare did not make a namespace" >&2; exit 1; }; sleep 0.02
    done
}
holder; A=$H
holder; B=$H
NA=/proc/$A/ns/net
NB=/proc/$B/ns/net
for n in $NA $NB; do
    i=$(ino $n)
    if [ -z "$i" ] || [ "$i" = "$HOST" ] || [ "$i" = "$(ino /proc/1/ns/net 2>/dev/null)" ]; then echo "watch-netns: $n is the host's namespace; refusing" >&2; exit 1; fi
done
nsenter --net=$NA ip link set lo up
nsenter --net=$NB ip link set lo up

mkfifo "$TMP/in"
"$PROBE" watch --interval-ms 5 --port 7000 --netns $NA --netns $NB --family 4 <"$TMP/in" >"$TMP/w.out" 2>"$TMP/w.err" &
W=$!
exec 3>"$TMP/in"
check "watching line lists both namespaces" wait_for "\"event\":\"watching\".*\"netns\":\[{\"ns\":0,\"path\":\"$NA\",\"port\":7000,\"family\":\"all\"},{\"ns\":1,\"path\":\"$NB\",\"port\":7000,\"family\":\"4\"}\]" "$TMP/w.out"
check "watcher back in its own namespace" [ "$(ino /proc/$W/ns/net)" = "$HOST" ]

nsenter --net=$NA "$PROBE" server --mode echo --listen 127.0.0.1:7000 >"$TMP/srv.out" 2>&1 &
SRV=$!
check "server in A listening" wait_for '"event":"listening"' "$TMP/srv.out"
printf '{"host":"127.0.0.1","port":7000,"steps":[{"op":"connect","timeoutMs":2000},{"op":"sleep","ms":50},{"op":"close"}]}' |
    nsenter --net=$NA "$PROBE" client >"$TMP/c.out"
check "A: LISTEN seen, tagged ns 0" wait_for '"ns":0,"local":"127.0.0.1:7000","remote":"0.0.0.0:0","state":"LISTEN"' "$TMP/w.out"
check "A: the client's connection seen" wait_for '"ns":0,"local":"127.0.0.1:[0-9]*","remote":"127.0.0.1:7000","state":"ESTABLISHED"' "$TMP/w.out"
check "B: nothing" sh -c "! grep -q '^{\"tUs\":[0-9]*,\"ns\":1,' '$TMP/w.out'"
# the client socket closed first: TIME_WAIT on its side
check "A: TIME_WAIT" wait_for '"ns":0,"local":"127.0.0.1:[0-9]*","remote":"127.0.0.1:7000","state":"TIME_WAIT"' "$TMP/w.out"

# counters: the text of each namespace's own files, as nsenter sees them
esc() { awk '{ printf "%s\\n", $0 }'; }
sleep 0.1
echo counters >&3
check "two counters lines" wait_for '"event":"counters","ns":1' "$TMP/w.out"
grep '"event":"counters","ns":0' "$TMP/w.out" >"$TMP/c0"
grep '"event":"counters","ns":1' "$TMP/w.out" >"$TMP/c1"
check "A's snmp = nsenter A cat" grep -qF "\"snmp\":\"$(nsenter --net=$NA cat /proc/net/snmp | esc)\"" "$TMP/c0"
check "A's netstat = nsenter A cat" grep -qF "\"netstat\":\"$(nsenter --net=$NA cat /proc/net/netstat | esc)\"" "$TMP/c0"
check "B's snmp = nsenter B cat" grep -qF "\"snmp\":\"$(nsenter --net=$NB cat /proc/net/snmp | esc)\"" "$TMP/c1"
check "A's and B's differ (A made a connection)" sh -c "! grep -qF \"\$(sed 's/.*\"snmp\":\"\([^\"]*\)\".*/\1/' '$TMP/c1')\" '$TMP/c0'"
check "A's snmp counts the active open" sh -c "nsenter --net=$NA cat /proc/net/snmp | awk '/^Tcp:/ { n++; if (n == 2) exit !(\$6 >= 1) }'"
# a second request re-reads (seq_file from offset 0): A's active opens go up by one
printf '{"host":"127.0.0.1","port":7000,"steps":[{"op":"connect","timeoutMs":2000},{"op":"close"}]}' |
    nsenter --net=$NA "$PROBE" client >/dev/null
sleep 0.1  # the close's last segments settle first: the counters must not move between the two reads
echo counters >&3
i=0; while [ "$(grep -c '"event":"counters","ns":0' "$TMP/w.out")" -lt 2 ] && [ $i -lt 40 ]; do i=$((i + 1)); sleep 0.05; done
check "a second request re-reads A" grep -qF "\"snmp\":\"$(nsenter --net=$NA cat /proc/net/snmp | esc)\"" "$(grep '"event":"counters","ns":0' "$TMP/w.out" | tail -n 1 >"$TMP/c0b"; echo "$TMP/c0b")"
check "...and it moved" sh -c "! cmp -s '$TMP/c0' '$TMP/c0b'"

kill $SRV; wait $SRV 2>/dev/null; SRV=
check "A: the listener GONE" wait_for '"ns":0,"local":"127.0.0.1:7000","remote":"0.0.0.0:0","state":"GONE"' "$TMP/w.out"
echo bogus >&3
check "unknown command named on stderr" wait_for "unknown stdin command 'bogus'" "$TMP/w.err"
exec 3>&-
wait $W
check "stdin EOF: exit 0" [ $? -eq 0 ]
W=

"$PROBE" watch --no-stdin --netns /nonexistent/ns >/dev/null 2>"$TMP/e1"
check "missing --netns path: exit 2" [ $? -eq 2 ]
check "missing --netns path: named" grep -q -- '--netns /nonexistent/ns' "$TMP/e1"
"$PROBE" watch --no-stdin --netns /proc/self/ns/uts >/dev/null 2>"$TMP/e2"
check "not a network namespace: exit 2" [ $? -eq 2 ]
check "not a network namespace: said" grep -q 'not a network namespace' "$TMP/e2"
"$PROBE" watch --no-stdin --netns >/dev/null 2>"$TMP/e3"
check "--netns without a path: exit 2" [ $? -eq 2 ]

echo "watch-netns: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
