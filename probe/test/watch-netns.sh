#!/bin/sh
# `harness-probe watch --netns A --netns B`: one process watches two namespaces.
# - each namespace's events carry its index and only its own sockets;
# - the counters of each (/proc/net files opened while in it) stay bound to it after the watcher
#   went back to its own namespace: they equal `nsenter --net=… cat /proc/net/snmp`;
# - bad paths exit 2; stdin EOF stops it;
# - connections that open and close between two polls are reported as they are freed (CLOSE,
#   GONE), and a socket reset while held is not reported twice. KEEP=1 keeps the outputs.
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
    if [ -n "${KEEP:-}" ]; then echo "watch-netns: kept $TMP" >&2; else rm -rf "$TMP"; fi
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

# in_b NAME INTERVAL MODE STEPS: a watcher of B polling every INTERVAL ms (output $TMP/NAME.out),
# a MODE server on 127.0.0.1:7001 in B, then one client with STEPS; sets W, SRV and CP (its port).
in_b() {
    "$PROBE" watch --no-stdin --interval-ms "$2" --port 7001 --netns $NB >"$TMP/$1.out" 2>"$TMP/$1.err" &
    W=$!
    check "B ($1): watcher up" wait_for '"event":"watching"' "$TMP/$1.out"
    nsenter --net=$NB "$PROBE" server --mode "$3" --listen 127.0.0.1:7001 >"$TMP/$1.srv" 2>&1 &
    SRV=$!
    check "B ($1): $3 server listening" wait_for '"event":"listening"' "$TMP/$1.srv"
    printf '{"host":"127.0.0.1","port":7001,"steps":[%s]}' "$4" | nsenter --net=$NB "$PROBE" client >"$TMP/$1.client"
    CP=$(sed -n 's/.*"local":"127.0.0.1:\([0-9]*\)".*/\1/p' "$TMP/$1.client" | head -n 1)
    check "B ($1): the client's port known ($CP)" [ -n "$CP" ]
}

# Connections that open and close between two polls: a watcher that polls once a minute sees them
# only through the kernel's destroy notifications (sock_diag SKNLGRP_INET_TCP_DESTROY).
in_b d 60000 echo '{"op":"connect","timeoutMs":2000},{"op":"write","bytes":10,"timeoutMs":2000},{"op":"read","bytes":10,"timeoutMs":2000},{"op":"close"}'
# the server's socket (closed second, freed after LAST_ACK) was never in a dump: CLOSE, then GONE
check "B: unseen server socket reported as it was freed: CLOSE" wait_for "\"local\":\"127.0.0.1:7001\",\"remote\":\"127.0.0.1:$CP\",\"state\":\"CLOSE\"" "$TMP/d.out"
check "B: ...then GONE" wait_for "\"local\":\"127.0.0.1:7001\",\"remote\":\"127.0.0.1:$CP\",\"state\":\"GONE\"" "$TMP/d.out"
# the client's socket was freed when its TIME_WAIT took its place: the poll it prompted shows that
check "B: the client's TIME_WAIT, seen at its socket's free (no tick in a minute)" wait_for "\"local\":\"127.0.0.1:$CP\",\"remote\":\"127.0.0.1:7001\",\"state\":\"TIME_WAIT\"" "$TMP/d.out"
check "B: ...not as a CLOSE" sh -c "! grep -q '\"local\":\"127.0.0.1:$CP\",\"remote\":\"127.0.0.1:7001\",\"state\":\"CLOSE\"' '$TMP/d.out'"
check "B: the stream is in time order" sh -c "sed -n 's/^{\"tUs\":\([0-9]*\),.*/\1/p' '$TMP/d.out' | sort -c -n"
kill $SRV; wait $SRV 2>/dev/null; SRV=
kill $W; wait $W 2>/dev/null; W=

# A socket reset while its owner still holds it leaves the table (CLOSE is unhashed) at the next
# poll; its free, when the owner closes it later, is not a second connection.
in_b g 20 linger0 '{"op":"connect","timeoutMs":2000},{"op":"sleep","ms":100},{"op":"write","bytes":10,"timeoutMs":2000},{"op":"sleep","ms":300},{"op":"close"}'
sleep 0.1
check "B: the client seen ESTABLISHED first" grep -q "\"local\":\"127.0.0.1:$CP\",\"remote\":\"127.0.0.1:7001\",\"state\":\"ESTABLISHED\"" "$TMP/g.out"
check "B: the reset socket GONE once" [ "$(grep -c "\"local\":\"127.0.0.1:$CP\",\"remote\":\"127.0.0.1:7001\",\"state\":\"GONE\"" "$TMP/g.out")" = 1 ]
check "B: ...and never a CLOSE (its free came after its GONE)" sh -c "! grep -q '\"local\":\"127.0.0.1:$CP\",\"remote\":\"127.0.0.1:7001\",\"state\":\"CLOSE\"' '$TMP/g.out'"
# the server's socket, closed with SO_LINGER {1,0}, is freed with its remote port cleared
# (tcp_disconnect): not a connection to anyone, not reported
check "B: no socket with remote port 0 reported" sh -c "! grep -q '\"remote\":\"127.0.0.1:0\"' '$TMP/g.out'"
kill $SRV; wait $SRV 2>/dev/null; SRV=
kill $W; wait $W 2>/dev/null; W=

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
