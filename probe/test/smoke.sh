#!/bin/sh
# Integration smoke test for harness-probe on loopback in the current namespace:
# echo server + client connect/write/read/close, ECONNREFUSED on a closed port,
# exit codes for bad input. Usage: smoke.sh PATH/TO/harness-probe
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
check "bad --mode names the flag" grep -q -- '--mode' "$TMP/c6.err"

echo "smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
