#!/bin/sh
# Integration smoke test for harness-probe on loopback in the current namespace:
# echo server + client connect/write/read/close, ECONNREFUSED on a closed port,
# exit codes for bad input, every server mode --list-modes names (starts, and what a client sees).
# Usage: smoke.sh PATH/TO/harness-probe
set -u
PROBE=${1:-./build/harness-probe}
TMP=$(mktemp -d)
pass=0
fail=0
SRV_PID=
cleanup() {
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { # check DESC COMMAND...
    desc=$1; shift
    if "$@"; then ok; else bad "$desc"; fi
}

# start_server MODE -> sets SRV_PID and PORT (port 0: the kernel picks a free high port)
start_server() {
    "$PROBE" server --mode "$1" --listen 127.0.0.1:0 >"$TMP/srv.out" 2>"$TMP/srv.err" &
    SRV_PID=$!
    i=0
    while ! grep -q '"event":"listening"' "$TMP/srv.out" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then bad "server $1 did not report listening"; cat "$TMP/srv.err" >&2; return 1; fi
        sleep 0.05
    done
    PORT=$(sed -n 's/.*"event":"listening".*"port":\([0-9][0-9]*\).*/\1/p' "$TMP/srv.out" | head -n 1)
}

stop_server() {
    kill -TERM "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=
}

# wait_for PATTERN FILE -> 0 once FILE has a line matching PATTERN (up to 2 s)
wait_for() {
    i=0
    while ! grep -q -- "$1" "$2" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 40 ] && return 1
        sleep 0.05
    done
}

# client STEPS_JSON OUT -> runs the client against 127.0.0.1:$PORT
client() { printf '{"host":"127.0.0.1","port":%s,"steps":[%s]}' "$PORT" "$1" | "$PROBE" client >"$2"; }

# step N FILE -> the JSON text of step N of a client result, one line
step() { tr -d '\n' <"$2" | sed 's/{"i":/\n{"i":/g' | grep "^{\"i\":$1,"; }

start_server echo || exit 1
check "listening line has pid" grep -q "\"pid\":$SRV_PID" "$TMP/srv.out"

cat >"$TMP/s1.json" <<JSON
{"host":"127.0.0.1","port":$PORT,"steps":[
  {"op":"connect","timeoutMs":2000},
  {"op":"write","bytes":100,"timeoutMs":2000},
  {"op":"read","bytes":100,"timeoutMs":2000},
  {"op":"close"}]}
JSON
"$PROBE" client <"$TMP/s1.json" >"$TMP/c1.out"
check "client exit 0" [ $? -eq 0 ]
check "one JSON document" [ "$(wc -l <"$TMP/c1.out")" -eq 1 ]
check "header" grep -q '^{"probe":"harness-probe","version":1,"mode":"client","clock":"CLOCK_MONOTONIC","steps":\[' "$TMP/c1.out"
for n in 0 1 2 3; do
    if step $n "$TMP/c1.out" | grep -q '"ok":true,"errno":null'; then ok; else bad "step $n not ok: $(step $n "$TMP/c1.out")"; fi
done
step 0 "$TMP/c1.out" | grep -q '"op":"connect".*"state":"ESTABLISHED"' && ok || bad "connect ESTABLISHED"
step 0 "$TMP/c1.out" | grep -q "\"remote\":\"127.0.0.1:$PORT\"" && ok || bad "connect remote"
step 1 "$TMP/c1.out" | grep -q '"op":"write".*"bytes":100,' && ok || bad "write 100 bytes"
step 2 "$TMP/c1.out" | grep -q '"op":"read".*"bytes":100,"eof":false' && ok || bad "read 100 bytes"
step 3 "$TMP/c1.out" | grep -q '"op":"close".*"tcp":null' && ok || bad "close has no tcp snapshot"

# --script FILE gives the same shape
"$PROBE" client --script "$TMP/s1.json" >"$TMP/c1b.out"
check "--script exit 0" [ $? -eq 0 ]
step 2 "$TMP/c1b.out" | grep -q '"ok":true.*"bytes":100,' && ok || bad "--script read 100"

sleep 0.1
check "server logged accept" grep -q '"event":"accept"' "$TMP/srv.out"
check "server logged close" grep -q '"event":"close"' "$TMP/srv.out"
check "server reports its accept as a step" grep -q '"event":"step","op":"accept","ok":true,"errno":null' "$TMP/srv.out"
check "server reports its read of 100 bytes as a step" grep -q '"event":"step","op":"read","ok":true,"errno":null,.*"bytes":100,"eof":false' "$TMP/srv.out"
check "server reports the EOF read and its close as steps" sh -c "grep -q '\"op\":\"read\".*\"eof\":true' '$TMP/srv.out' && grep -q '\"event\":\"step\",\"op\":\"close\",\"ok\":true' '$TMP/srv.out'"

# The kernel's receive stamps the harness trusts over a late wake-up (verdict/checks.ts kernelStampMs):
# tcp_info read 60 ms after a connect says the SYN-ACK came 60 ms ago (whole jiffies: 52..68 for
# HZ 100..1000), and 40 ms after a read that the data came 40 ms ago (32..48).
cat >"$TMP/s7.json" <<JSON
{"host":"127.0.0.1","port":$PORT,"steps":[
  {"op":"connect","timeoutMs":2000},{"op":"sleep","ms":60},{"op":"tcpinfo"},
  {"op":"write","bytes":10,"timeoutMs":2000},{"op":"read","bytes":10,"timeoutMs":2000},{"op":"sleep","ms":40},{"op":"tcpinfo"},
  {"op":"close"}]}
JSON
"$PROBE" client <"$TMP/s7.json" >"$TMP/c7.out"
field() { step "$1" "$TMP/c7.out" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
in_range() { [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
in_range "$(field 2 lastAckRecvMs)" 52 68 && ok || bad "lastAckRecvMs 60 ms after connect: $(field 2 lastAckRecvMs)"
in_range "$(field 0 lastAckRecvMs)" 0 8 && ok || bad "lastAckRecvMs right after connect: $(field 0 lastAckRecvMs)"
in_range "$(field 6 lastDataRecvMs)" 32 48 && ok || bad "lastDataRecvMs 40 ms after the read: $(field 6 lastDataRecvMs)"

# nursery: PROGRAM runs in a new network namespace whose tcp_child_ehash_entries is set (root only)
if [ "$(id -u)" = 0 ]; then
    host_ns=$(readlink /proc/self/ns/net)
    out=$("$PROBE" nursery --child-ehash 1024 -- readlink /proc/self/ns/net)
    check "nursery: a namespace other than the host's" [ -n "$out" -a "$out" != "$host_ns" ]
    out=$("$PROBE" nursery --child-ehash 1024 -- cat /proc/sys/net/ipv4/tcp_child_ehash_entries 2>/dev/null)
    check "nursery: tcp_child_ehash_entries 1024 inside (6.1+)" [ "$out" = 1024 ]
    "$PROBE" nursery --child-ehash x -- true 2>/dev/null
    check "nursery: bad --child-ehash exit 2" [ $? -eq 2 ]
    "$PROBE" nursery -- 2>/dev/null
    check "nursery: no program exit 2" [ $? -eq 2 ]
    "$PROBE" nursery -- /nonexistent 2>/dev/null
    check "nursery: a program that cannot run exit 1" [ $? -eq 1 ]
fi

# SIGTERM -> exit 0
kill -TERM "$SRV_PID"
wait "$SRV_PID"
check "server exits 0 on SIGTERM" [ $? -eq 0 ]
SRV_PID=

# the port is closed now -> ECONNREFUSED (loopback answers with RST)
printf '{"host":"127.0.0.1","port":%s,"steps":[{"op":"connect","timeoutMs":2000}]}' "$PORT" | "$PROBE" client >"$TMP/c2.out"
check "refused: exit 0" [ $? -eq 0 ]
step 0 "$TMP/c2.out" | grep -q '"ok":false,"errno":"ECONNREFUSED","errnoNum":111' && ok || bad "ECONNREFUSED: $(cat "$TMP/c2.out")"

# bad input -> exit 2, message on stderr, nothing on stdout
printf '{"steps":[{"op":"nope"}]}' | "$PROBE" client >"$TMP/c3.out" 2>"$TMP/c3.err"
check "bad script exit 2" [ $? -eq 2 ]
check "bad script message" grep -q 'unknown op "nope"' "$TMP/c3.err"
check "bad script: no stdout" [ ! -s "$TMP/c3.out" ]
printf '{"steps":[' | "$PROBE" client >/dev/null 2>"$TMP/c4.err"
check "malformed JSON exit 2" [ $? -eq 2 ]
"$PROBE" server --mode echo --listen nothost:1 >/dev/null 2>"$TMP/c5.err"
check "bad --listen exit 2" [ $? -eq 2 ]
check "bad --listen names the flag" grep -q -- '--listen' "$TMP/c5.err"
"$PROBE" server --mode bogus --listen 127.0.0.1:0 >/dev/null 2>"$TMP/c6.err"
check "bad --mode exit 2" [ $? -eq 2 ]
"$PROBE" delay --queue 1 >/dev/null 2>&1
check "delay without --delay-us exit 2" [ $? -eq 2 ]
"$PROBE" delay --queue 1 --delay-us 1000 --jitter-us 2000 >/dev/null 2>"$TMP/delay.err"
check "delay with jitter > delay exit 2" [ $? -eq 2 ]
check "delay says why" grep -q "must not exceed" "$TMP/delay.err"
"$PROBE" delay --queue 70000 --delay-us 1 >/dev/null 2>&1
check "delay bad --queue exit 2" [ $? -eq 2 ]
check "bad --mode names the flag" grep -q -- '--mode' "$TMP/c6.err"

# --list-modes: one JSON line; every mode it names starts and says so in its listening line.
"$PROBE" server --list-modes >"$TMP/modes.out" 2>"$TMP/modes.err"
check "--list-modes exit 0" [ $? -eq 0 ]
check "--list-modes: one line" [ "$(wc -l <"$TMP/modes.out")" -eq 1 ]
check "--list-modes: a JSON array" grep -q '^\[{"name":".*}\]$' "$TMP/modes.out"
MODES=$(grep -o '"name":"[^"]*"' "$TMP/modes.out" | sed 's/"name":"\(.*\)"/\1/')
check "--list-modes names echo" sh -c "echo '$MODES' | grep -qx echo"
for m in $MODES; do
    if start_server "$m"; then
        grep -q "\"mode\":\"$m\"" "$TMP/srv.out" && ok || bad "mode $m: listening line says $(cat "$TMP/srv.out")"
        stop_server
    fi
done
check "bad --mode lists every mode" grep -q "known: $(echo $MODES | sed 's/ /, /g'))" "$TMP/c6.err"
"$PROBE" server --list-modes --mode echo >/dev/null 2>&1
check "--list-modes with another flag exit 2" [ $? -eq 2 ]

# What a client sees from each mode the harness's faults use.
start_server no-accept && {
    client '{"op":"connect","timeoutMs":2000}' "$TMP/m.out"
    step 0 "$TMP/m.out" | grep -q '"ok":true' && ok || bad "no-accept: connect completes in the accept queue"
    sleep 0.1
    check "no-accept: never accepts" sh -c "! grep -q '\"event\":\"accept\"' '$TMP/srv.out'"
    stop_server
}
start_server close-on-accept && {
    client '{"op":"connect","timeoutMs":2000},{"op":"read","timeoutMs":2000}' "$TMP/m.out"
    step 1 "$TMP/m.out" | grep -q '"ok":true,"errno":null.*"eof":true' && ok || bad "close-on-accept: read sees EOF: $(step 1 "$TMP/m.out")"
    check "close-on-accept: reason" wait_for '"reason":"close-on-accept"' "$TMP/srv.out"
    stop_server
}
start_server close-unread && {
    client '{"op":"connect","timeoutMs":2000},{"op":"write","bytes":10,"timeoutMs":2000},{"op":"read","timeoutMs":2000}' "$TMP/m.out"
    step 2 "$TMP/m.out" | grep -q '"errno":"ECONNRESET"' && ok || bad "close-unread: read ECONNRESET: $(step 2 "$TMP/m.out")"
    check "close-unread: closed with 10 bytes unread" wait_for '"unread":10' "$TMP/srv.out"
    stop_server
}
start_server linger0 && {
    client '{"op":"connect","timeoutMs":2000},{"op":"write","bytes":10,"timeoutMs":2000},{"op":"read","timeoutMs":2000}' "$TMP/m.out"
    step 2 "$TMP/m.out" | grep -q '"errno":"ECONNRESET"' && ok || bad "linger0: read ECONNRESET: $(step 2 "$TMP/m.out")"
    check "linger0: read all 10 bytes, then closed" wait_for '"read":10' "$TMP/srv.out"
    stop_server
}
start_server no-close && {
    client '{"op":"connect","timeoutMs":2000},{"op":"write","bytes":10,"timeoutMs":2000},{"op":"close"}' "$TMP/m.out"
    check "no-close: sees the EOF" wait_for '"event":"eof"' "$TMP/srv.out"
    check "no-close: never closes" sh -c "! grep -q '\"event\":\"close\"' '$TMP/srv.out'"
    stop_server
}
start_server sink && {
    client '{"op":"connect","timeoutMs":2000},{"op":"write","bytes":10,"timeoutMs":2000},{"op":"close"}' "$TMP/m.out"
    check "sink: accepts" wait_for '"event":"accept"' "$TMP/srv.out"
    sleep 0.1
    check "sink: never reads nor closes" sh -c "! grep -q '\"event\":\"\(eof\|close\)\"' '$TMP/srv.out'"
    stop_server
}

start_server request-reply && {
    # Nothing comes back until the request is complete; keep-alive: two requests, one connection.
    client '{"op":"connect","timeoutMs":2000},{"op":"write","data":"HEAD / HTTP/1.1\r\nHost: h\r\n","timeoutMs":2000},{"op":"read","timeoutMs":200},{"op":"write","data":"\r\n","timeoutMs":2000},{"op":"read","timeoutMs":2000},{"op":"write","data":"HEAD / HTTP/1.1\r\n\r\n","timeoutMs":2000},{"op":"read","timeoutMs":2000}' "$TMP/m.out"
    step 2 "$TMP/m.out" | grep -q '"ok":false,"errno":null.*"timedOut":true,"bytes":0' && ok || bad "request-reply: no reply to half a request: $(step 2 "$TMP/m.out")"
    step 4 "$TMP/m.out" | grep -q '"ok":true.*"bytes":38,"eof":false' && ok || bad "request-reply: reply once complete: $(step 4 "$TMP/m.out")"
    step 6 "$TMP/m.out" | grep -q '"ok":true.*"bytes":38,"eof":false' && ok || bad "request-reply: keep-alive: $(step 6 "$TMP/m.out")"
    # HTTP/1.0: the reply, then the server closes first.
    client '{"op":"connect","timeoutMs":2000},{"op":"write","data":"HEAD / HTTP/1.0\r\n\r\n","timeoutMs":2000},{"op":"read","bytes":100000,"timeoutMs":2000}' "$TMP/m.out"
    step 2 "$TMP/m.out" | grep -q '"ok":true.*"bytes":57,"eof":true' && ok || bad "request-reply: HTTP/1.0 reply then EOF: $(step 2 "$TMP/m.out")"
    check "request-reply: closed after the reply" wait_for '"reason":"replied"' "$TMP/srv.out"
    # listen op: the server holds the port (SO_REUSEADDR alone never shares a listener), REUSEPORT does not help
    # against a listener without it; a free port binds.
    client '{"op":"setsockopt","opt":"REUSEADDR","value":1},{"op":"listen"},{"op":"setsockopt","sock":1,"opt":"REUSEPORT","value":1},{"op":"listen","sock":1}' "$TMP/m.out"
    step 1 "$TMP/m.out" | grep -q '"ok":false,"errno":"EADDRINUSE","errnoNum":98,"call":"bind"' && ok || bad "listen: EADDRINUSE from bind: $(step 1 "$TMP/m.out")"
    step 3 "$TMP/m.out" | grep -q '"errno":"EADDRINUSE"' && ok || bad "listen: REUSEPORT alone: $(step 3 "$TMP/m.out")"
    stop_server
}
"$PROBE" server --mode echo --listen 127.0.0.1:0 --reuseport 1 >"$TMP/rp.out" 2>"$TMP/rp.err" &
RP_PID=$!
wait_for '"reuseport":true' "$TMP/rp.out" && ok || bad "--reuseport 1 in the listening line: $(cat "$TMP/rp.out" "$TMP/rp.err")"
PORT=$(sed -n 's/.*"port":\([0-9][0-9]*\).*/\1/p' "$TMP/rp.out" | head -n 1)
client '{"op":"setsockopt","opt":"REUSEPORT","value":1},{"op":"listen","host":"127.0.0.1"},{"op":"tcpinfo"}' "$TMP/m.out"
step 1 "$TMP/m.out" | grep -q '"ok":true,"errno":null' && ok || bad "listen: REUSEPORT on both listeners: $(step 1 "$TMP/m.out")"
step 2 "$TMP/m.out" | grep -q '"state":"LISTEN"' && ok || bad "listen: LISTEN: $(step 2 "$TMP/m.out")"
kill -TERM "$RP_PID"; wait "$RP_PID" 2>/dev/null
"$PROBE" server --mode echo --listen 127.0.0.1:0 --reuseaddr 2 >/dev/null 2>"$TMP/c7.err"
check "bad --reuseaddr exit 2" [ $? -eq 2 ]
check "bad --reuseaddr names the flag" grep -q -- '--reuseaddr' "$TMP/c7.err"

echo "smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
