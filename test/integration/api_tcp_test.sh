#!/usr/bin/env bash
# The TCP API: TLS (a self-signed pair the server keeps, or the admin's),
# checked by the client before the bearer token leaves; plain TCP only on
# loopback; the token and the key read only from private files.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_test tcp
chmod 711 "$WORK"  # instances traverse it to reach their data
head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$WORK/token"
chmod 600 "$WORK/token"
TOKEN=$(cat "$WORK/token")
cp "$WORK/token" "$WORK/open-token" && chmod 644 "$WORK/open-token"
ln -s "$WORK/token" "$WORK/linked-token"
PORT=$(free_port)
PASSED=0
passed() { pass "$1"; PASSED=$((PASSED + 1)); }

# A server that must refuse to start: $1 is what its error must say.
refused() {
  local want=$1 out
  shift
  if out=$("$DSPOOL" server --data-dir "$DATA" "$@" 2>&1); then fail "server started with: $*"; fi
  [[ "$out" == *"$want"* ]] || fail "unclear error for '$*': $out"
}

refused "must not be readable or writable by group or others" --listen "127.0.0.1:$PORT" --token-file "$WORK/open-token"
refused "is a symlink" --listen "127.0.0.1:$PORT" --token-file "$WORK/linked-token"
passed "a token file others may read, or a symlink, is refused"

refused "plain TCP is served on loopback addresses only" --listen "0.0.0.0:$PORT" --no-tls --token-file "$WORK/token"
refused "the API token would cross the network in clear" --listen "[::]:$PORT" --no-tls --token-file "$WORK/token"
! ss -Htln "sport = :$PORT" | grep -q . || fail "a refused listener left port $PORT bound"
passed "plain TCP on a non-loopback address is refused"

# Starts the server with "$@", waits until its log names the TCP API, and
# sets FINGERPRINT from that line (empty for plain TCP).
start_tcp_server() {
  : >"$WORK/server.log"
  "$DSPOOL" server --data-dir "$DATA" --token-file "$WORK/token" "$@" >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  local line=""
  for _ in $(seq 200); do
    line=$(grep -m1 'API on t' "$WORK/server.log" || true)
    [[ -n "$line" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; fail "server exited"; }
    sleep 0.05
  done
  [[ -n "$line" ]] || { cat "$WORK/server.log"; fail "the server never said where the TCP API is"; }
  FINGERPRINT=$(sed -n 's/.*SHA-256 fingerprint \([0-9A-F:]*\)).*/\1/p' <<<"$line")
}
tls() { "$DSPOOL" --server "tls:127.0.0.1:$PORT" "$@"; }

# 1. TLS with the server's own self-signed pair.
start_tcp_server --listen "127.0.0.1:$PORT"
[[ -s "$DATA/api.crt" && -s "$DATA/api.key" ]] || fail "no self-signed pair in the data dir"
[[ "$(stat -c '%a %u' "$DATA/api.key")" == "600 0" ]] || fail "api.key is $(stat -c '%a %u' "$DATA/api.key")"
OPENSSL_FP=$(openssl x509 -in "$DATA/api.crt" -noout -fingerprint -sha256 | sed 's/.*=//')
[[ -n "$FINGERPRINT" && "$FINGERPRINT" == "$OPENSSL_FP" ]] ||
  fail "logged fingerprint '$FINGERPRINT' is not openssl's '$OPENSSL_FP'"
out=$(tls --server-fingerprint "$FINGERPRINT" --token-file "$WORK/token" status 2>&1) ||
  { cat "$WORK/server.log"; fail "no answer over TLS with the pinned certificate: $out"; }
DSPOOL_SERVER_FINGERPRINT="sha256 Fingerprint=$FINGERPRINT" tls --token-file "$WORK/token" -o json status >/dev/null ||
  fail "the fingerprint from the environment, as openssl prints it, was not taken"
passed "the TCP API is TLS with a self-signed certificate whose logged fingerprint clients pin"

out=$(tls --token-file "$WORK/token" status 2>&1) && fail "a self-signed certificate was trusted without a pin"
[[ "$out" == *"is not trusted: self-signed certificate"*"fingerprint"* ]] || fail "unclear error without a pin: $out"
WRONG=$(openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=other \
          -keyout /dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 | sed 's/.*=//')
out=$(tls --server-fingerprint "$WRONG" --token-file "$WORK/token" status 2>&1) &&
  fail "a certificate with another fingerprint was accepted"
[[ "$out" == *"has SHA-256 fingerprint $FINGERPRINT, not the expected $WRONG"*"nothing was sent"* ]] ||
  fail "unclear error on a fingerprint mismatch: $out"
out=$(tls --server-fingerprint "AB:CD" --token-file "$WORK/token" status 2>&1) && fail "a malformed pin was taken"
[[ "$out" == *"--server-fingerprint: "*"has 4 hex digits"* ]] || fail "unclear error on a malformed pin: $out"
out=$("$DSPOOL" --server "tcp:127.0.0.1:$PORT" --token-file "$WORK/token" status 2>&1) &&
  fail "the TLS port answered plain HTTP"
passed "no pin, a wrong pin or plain HTTP gets nothing, with the reason"

out=$(tls --server-fingerprint "$FINGERPRINT" status 2>&1) && fail "TLS answered without a token"
[[ "$out" == *"bearer token"* ]] || fail "unclear error without token: $out"
printf 'wrong-token-0123456789\n' >"$WORK/wrong" && chmod 600 "$WORK/wrong"
out=$(tls --server-fingerprint "$FINGERPRINT" --token-file "$WORK/wrong" status 2>&1) &&
  fail "TLS answered with a wrong token"
[[ "$out" == *"bearer token"* ]] || fail "unclear error with a wrong token: $out"
grep -q "$TOKEN" "$WORK/server.log" && fail "the token appears in the server log"
[[ "$(tr '\0' ' ' </proc/$SERVER_PID/cmdline)" != *"$TOKEN"* ]] || fail "the token is in argv"
passed "the TCP API needs the token, which stays out of logs and argv"

# The pair is kept: a restart serves the same certificate.
stop_server
start_tcp_server --listen "127.0.0.1:$PORT"
[[ "$FINGERPRINT" == "$OPENSSL_FP" ]] || fail "the restarted server has another certificate: $FINGERPRINT"
tls --server-fingerprint "$OPENSSL_FP" --token-file "$WORK/token" status >/dev/null || fail "the pin broke on restart"
stop_server
passed "the self-signed pair survives a restart, and so do the clients' pins"

# 2. The admin's certificate, whose key must be private.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=admin \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/admin.key" -out "$WORK/admin.crt" 2>/dev/null
chmod 644 "$WORK/admin.key"
refused "--tls-key: $WORK/admin.key must not be readable or writable by group or others" \
  --listen "127.0.0.1:$PORT" --tls-cert "$WORK/admin.crt" --tls-key "$WORK/admin.key" --token-file "$WORK/token"
chmod 600 "$WORK/admin.key"
start_tcp_server --listen "127.0.0.1:$PORT" --tls-cert "$WORK/admin.crt" --tls-key "$WORK/admin.key"
ADMIN_FP=$(openssl x509 -in "$WORK/admin.crt" -noout -fingerprint -sha256 | sed 's/.*=//')
[[ "$FINGERPRINT" == "$ADMIN_FP" ]] || fail "the server logged $FINGERPRINT, not the given certificate's $ADMIN_FP"
tls --server-ca-file "$WORK/admin.crt" --token-file "$WORK/token" status >/dev/null ||
  fail "the admin's certificate was not trusted through its CA file"
out=$(tls --server-fingerprint "$OPENSSL_FP" --token-file "$WORK/token" status 2>&1) &&
  fail "the old pin matched the admin's certificate"
[[ "$out" == *"not the expected $OPENSSL_FP"* ]] || fail "unclear error with the old pin: $out"
stop_server
passed "--tls-cert and --tls-key: a private key only, verified by CA file or pin"

# 3. Plain TCP, on loopback, when asked for.
start_tcp_server --listen "127.0.0.1:$PORT" --no-tls
[[ -z "$FINGERPRINT" ]] || fail "a --no-tls server logged a certificate"
"$DSPOOL" --server "tcp:127.0.0.1:$PORT" --token-file "$WORK/token" status >/dev/null || fail "no answer over plain loopback TCP"
stop_server
passed "--no-tls serves plain TCP on loopback"
finish
