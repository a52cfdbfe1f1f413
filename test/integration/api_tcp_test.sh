#!/usr/bin/env bash
# The TCP API: served only with the bearer token, whose file must be private.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_test tcp
chmod 711 "$WORK"  # instances traverse it to reach their data
head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$WORK/token"
chmod 600 "$WORK/token"
cp "$WORK/token" "$WORK/open-token" && chmod 644 "$WORK/open-token"
PORT=$(free_port)

if out=$("$DSPOOL" server --data-dir "$DATA" --listen "127.0.0.1:$PORT" --token-file "$WORK/open-token" 2>&1); then
  fail "server started with a world-readable token file"
fi
[[ "$out" == *"must not be readable by group or others"* ]] || fail "unclear error: $out"
pass "a world-readable token file is refused"

"$DSPOOL" server --data-dir "$DATA" --listen "127.0.0.1:$PORT" --token-file "$WORK/token" >>"$WORK/server.log" 2>&1 &
SERVER_PID=$!
tcp() { "$DSPOOL" --server "tcp:127.0.0.1:$PORT" "$@"; }
for _ in $(seq 100); do tcp --token-file "$WORK/token" status >/dev/null 2>&1 && break; sleep 0.1; done
tcp --token-file "$WORK/token" status >/dev/null || { cat "$WORK/server.log"; fail "no answer over TCP with the token"; }
out=$(tcp status 2>&1) && fail "TCP answered without a token"
[[ "$out" == *"bearer token"* ]] || fail "unclear error without token: $out"
printf 'wrong-token-0123456789\n' >"$WORK/wrong" && chmod 600 "$WORK/wrong"
out=$(tcp --token-file "$WORK/wrong" status 2>&1) && fail "TCP answered with a wrong token"
grep -q "$(cat "$WORK/token")" "$WORK/server.log" && fail "the token appears in the server log"
[[ "$(tr '\0' ' ' </proc/$SERVER_PID/cmdline)" != *"$(cat "$WORK/token")"* ]] || fail "the token is in argv"
pass "the TCP API needs the token, which stays out of logs and argv"
echo "1 passed, 0 failed"
