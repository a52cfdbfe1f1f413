#!/usr/bin/env bash
# Floods (issue 13, point 5): 2,000 idle TCP connections to the pool's SSH
# front port do not keep a user out, and never reach the instance's sshd.
# The gateway connects to an instance only once a client has sent its first
# bytes (an SSH client sends its identification string at once), closes
# what stays silent (--first-bytes-timeout; 30 s here, so that a slow host
# still logs in while the flood waits), and keeps at most
# --pending-per-address (256) connections pending per client address,
# closing the oldest silent one for a new one: a flood from the user's own
# address (one NAT, here loopback) cannot lock the user out either.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_pool_test flood

FLOOD=2000
# The flood client holds 2,000 sockets, the gateway as many: room for both
# (the server raises its soft limit to this hard one).
if [[ "$(ulimit -Hn)" != unlimited ]] && (( $(ulimit -Hn) < 8192 )); then
  ulimit -Hn 8192 || fail "cannot raise the open-file limit to 8192 (ulimit -Hn is $(ulimit -Hn))"
fi
ulimit -Sn "$(ulimit -Hn)"
SILENCE=30
SERVER_ARGS=(--first-bytes-timeout "$SILENCE")
start_server

FRONT=$(free_port)
ssh_pool_spec "$FRONT" 1 512 >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null
wait_ready "$POOL" 1

front_ssh() {  # command...
  ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o LogLevel=ERROR -o ConnectTimeout=30 -p "$FRONT" "dsvmadmin@127.0.0.1" "$@"
}
metric_at_least() {  # name value
  local v
  v=$(metric "$1")
  (( ${v:-0} >= $2 ))
}
# Run inside the instance over the login itself: its TCP sockets on port 22
# (sshd's), listeners aside; the login's own connection is one of them.
SSHD_SOCKETS='cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '\''$2 ~ /:0016$/ && $4 != "0A" {n++} END {print n + 0}'\'''

# The flood client in the background: flood NAME SOURCES [--reopen].
declare -A FLOOD_PID
flood() {
  /usr/bin/python3 "$(dirname "$0")/flood_client.py" "$FRONT" "$FLOOD" "$2" "$WORK/$1.ready" ${3:+"$3"} \
    >"$WORK/$1.out" 2>"$WORK/$1.err" &
  FLOOD_PID[$1]=$!
  wait_until 120 "the flood '$1' holds $FLOOD connections" test -s "$WORK/$1.ready"
}
# Stops flood NAME; its statistics (JSON) go to $WORK/NAME.out.
stop_flood() {
  kill -TERM "${FLOOD_PID[$1]}"
  wait "${FLOOD_PID[$1]}" || fail "the flood client '$1' failed: $(cat "$WORK/$1.err")"
  unset "FLOOD_PID[$1]"
}
trap 'for p in "${FLOOD_PID[@]}"; do kill "$p" 2>/dev/null || true; done; cleanup' EXIT
flood_stat() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$WORK/$1.out" "$2"; }

front_ssh true || fail "no login through the front port before any flood"
pass "a login through the front port"

# ---- 2,000 idle connections from 20 other addresses, kept open ----
# 100 per address: under the per-address limit, so all 2,000 wait at the
# gateway together; each one the gateway closes for silence is reopened.
sources=$(seq -s, -f '127.0.0.%g' 2 21)
flood others "$sources" --reopen
wait_until 60 "the gateway holds the $FLOOD silent connections" metric_at_least dspool_gateway_awaiting_first_bytes "$FLOOD"
out=$(front_ssh "echo in; $SSHD_SOCKETS" 2>&1) || fail "a login during the flood failed: $out"
[[ "$(head -1 <<<"$out")" == in ]] || fail "a login during the flood said: $out"
sshd=$(tail -1 <<<"$out")
(( sshd < 50 )) || fail "the instance's sshd had $sshd connections during the flood"
waiting=$(metric dspool_gateway_awaiting_first_bytes)
(( waiting >= FLOOD )) || fail "the flood was not all waiting at the gateway after the login ($waiting)"
pass "with $FLOOD idle connections held open, a login gets in; the instance's sshd has $sshd connections"

# Silence is closed after the first-bytes timeout (and reopened by the flood).
wait_until $(( SILENCE + 60 )) "the gateway closes silent connections" \
  metric_at_least dspool_gateway_first_bytes_timeouts_total "$FLOOD"
stop_flood others
[[ "$(flood_stat others answered)" == 0 ]] \
  || fail "$(flood_stat others answered) silent connections were answered: they reached an sshd"
pass "silent connections closed after $SILENCE s ($(metric dspool_gateway_first_bytes_timeouts_total)); none reached sshd"
wait_until 30 "the flood's connections are gone once it ends" test "$(metric dspool_gateway_awaiting_first_bytes)" == 0

# ---- 2,000 from the user's own address ----
evicted_before=$(metric dspool_gateway_pending_evicted_total)
flood own 127.0.0.1
wait_until 60 "the gateway makes room at the per-address limit" \
  metric_at_least dspool_gateway_pending_evicted_total $(( evicted_before + FLOOD - 256 ))
out=$(front_ssh "echo in; $SSHD_SOCKETS" 2>&1) || fail "a login from the flood's own address failed: $out"
[[ "$(head -1 <<<"$out")" == in ]] || fail "a login from the flood's own address said: $out"
sshd=$(tail -1 <<<"$out")
(( sshd < 50 )) || fail "the instance's sshd had $sshd connections during the flood from the user's address"
# The address is at its limit (256): the login's connection made room by
# closing the oldest silent one, and left the count when it was relayed.
waiting=$(metric dspool_gateway_awaiting_first_bytes)
(( waiting == 255 )) || fail "not the per-address limit's 256 less one silent connections waiting after the login, but $waiting"
stop_flood own
[[ "$(flood_stat own answered)" == 0 ]] || fail "$(flood_stat own answered) silent connections were answered"
pass "with $FLOOD idle connections from the user's own address, a login gets in ($(metric dspool_gateway_pending_evicted_total) oldest silent ones closed); sshd had $sshd connections"
wait_until 30 "the flood's connections are gone once it ends" test "$(metric dspool_gateway_awaiting_first_bytes)" == 0
front_ssh true || fail "no login after the floods"
pass "after the floods nothing waits at the gateway, and logins go on"
finish
