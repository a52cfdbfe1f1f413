#!/usr/bin/env bash
# How many WebSockets the pools' Jupyter address holds, and what they cost
# (issue 13, point 8), side by side with HAProxy in one run: COUNT
# WebSockets opened and held at once (bench/ws_hold: TLS, alice's session
# cookie, one echoed message each) through (a) the dspool gateway's Jupyter
# port and (b) HAProxy 2.6 in http mode with the same certificate, to the
# same backend (bench/http_echo as alice's notebook server in one instance,
# as bench/jupyter.sh stages it). For each path, the proxy process's
# resident memory (VmRSS) before, with all of them open, just after they
# closed and SETTLE seconds later: memory per connection, and how much of
# it the process gave back. The gateway's figure is the whole `dspool
# server` process.
#
# Usage: bench/ws_capacity.sh BUILD/apps/dspool/dspool [THREADS]
#   THREADS  --gateway-threads and HAProxy's nbthread (default: 2)
# Environment: COUNT (9000; each proxy holds 2 descriptors a connection, so
#   COUNT is bound by half the hard RLIMIT_NOFILE), ROUNDS (2, alternating
#   the order of the paths), SETTLE (5), HTTP_ECHO and WS_HOLD (default:
#   BUILD/bench/), DOCS (docs/benchmarks.md; "-" prints the results only).
# Run as root. Installs haproxy if missing. Writes its block of
# docs/benchmarks.md and prints it.
set -euo pipefail
COMMAND_LINE="$0 $*"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
for v in HTTP_ECHO WS_HOLD COUNT ROUNDS SETTLE; do
  [[ -n "${!v:-}" ]] && COMMAND_LINE="$v=${!v} $COMMAND_LINE"
done
DSPOOL=$(realpath "$1")
THREADS=${2:-2}
COUNT=${COUNT:-9000}
ROUNDS=${ROUNDS:-2}
SETTLE=${SETTLE:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
HTTP_ECHO=$(realpath "${HTTP_ECHO:-$(dirname "$DSPOOL")/../../bench/http_echo}")
WS_HOLD=$(realpath "${WS_HOLD:-$(dirname "$DSPOOL")/../../bench/ws_hold}")
DOCS=${DOCS:-$REPO/docs/benchmarks.md}
source "$REPO/test/integration/lib.sh"
source "$HERE/lib.sh"
require_root_and_lxc
for tool in "$HTTP_ECHO" "$WS_HOLD"; do
  [[ -x "$tool" ]] || fail "no $tool: build it (ninja -C BUILD http_echo ws_hold) or set HTTP_ECHO / WS_HOLD"
done
ensure_haproxy
ulimit -n "$(ulimit -Hn)"
(( 2 * COUNT + 500 <= $(ulimit -Hn) )) \
  || fail "COUNT=$COUNT needs $((2 * COUNT + 500)) descriptors in one proxy; this host's hard limit is $(ulimit -Hn)"

WORK=$(mktemp -d /tmp/dspool-bench-cap.XXXXXX)
DATA=$WORK/data
SECRET=$WORK/secret
mkdir -m 700 "$SECRET"
POOL=cap$RANDOM
POOL=${POOL:0:8}
SUBNET=$(free_subnet)
USER_NAME=alice
HA_PID=""
bench_cleanup() {
  set +e
  [[ -n "$HA_PID" ]] && kill "$HA_PID" 2>/dev/null && wait "$HA_PID" 2>/dev/null
  bench_teardown
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
read -r JP HA_PORT <<<"$(for _ in 1 2; do free_port; done | sort -u | xargs)"
[[ -n "$HA_PORT" ]] || fail "could not find 2 distinct free ports"

echo_pool_up "$THREADS"

(umask 077; cat "$DATA/pools/$POOL/jupyter.crt" "$DATA/pools/$POOL/jupyter.key" >"$SECRET/haproxy.pem")
cat >"$WORK/haproxy.cfg" <<CFG
global
    nbthread $THREADS
    maxconn $((COUNT + 100))
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend jupyter
    bind 127.0.0.1:$HA_PORT ssl crt $SECRET/haproxy.pem
    default_backend notebook
backend notebook
    server nb $BACKEND
CFG
haproxy -c -q -f "$WORK/haproxy.cfg" || fail "haproxy rejects $WORK/haproxy.cfg"
# A fresh HAProxy for each of its runs: it keeps what it allocated in its
# own pools, so a second run in the same process would show no growth.
start_haproxy() {
  haproxy -db -f "$WORK/haproxy.cfg" >>"$WORK/haproxy.log" 2>&1 &
  HA_PID=$!
  wait_listening "$HA_PORT" haproxy "$WORK/haproxy.log"
  PID_OF[haproxy]=$HA_PID
}
stop_haproxy() {
  kill "$HA_PID"; wait "$HA_PID" 2>/dev/null || true
  HA_PID=""
  for _ in $(seq 100); do ss -Htln "sport = :$HA_PORT" | grep -q . || return 0; sleep 0.1; done
  fail "haproxy still listens on $HA_PORT after it was stopped"
}

declare -A URL_OF=([gateway]=wss://127.0.0.1:$JP [haproxy]=wss://127.0.0.1:$HA_PORT)
declare -A PID_OF=([gateway]=$(gateway_pid))
line_in() { grep -q "$1" "$2"; }
no_upstream() { [[ -z "$(ss -Htn state established dst "$BACKEND")" ]]; }

hold_run() {  # path round
  local path=$1 pid=${PID_OF[$1]} out=$WORK/hold.out r0 r1 r2 r3 open failed seconds hold
  rm -f "$out" "$WORK/hold.in"
  mkfifo "$WORK/hold.in"
  r0=$(rss_kib "$pid")
  WS_HOLD_HEADERS="Cookie: $COOKIE" "$WS_HOLD" "${URL_OF[$path]}/user/$USER_NAME/api/kernels/cap/channels" "$COUNT" \
    <"$WORK/hold.in" >"$out" 2>"$WORK/hold.err" &
  hold=$!
  exec 8>"$WORK/hold.in"
  wait_until 600 "$COUNT WebSockets through $path" line_in "^ws_hold open=" "$out"
  r1=$(rss_kib "$pid")
  open=$(sed -n 's/^ws_hold open=\([0-9]*\).*/\1/p' "$out")
  failed=$(sed -n 's/^ws_hold open=[0-9]* failed=\([0-9]*\).*/\1/p' "$out")
  seconds=$(sed -n 's/^ws_hold open=.* seconds=\([0-9.]*\).*/\1/p' "$out")
  echo >&8
  exec 8>&-
  wait_until 300 "the WebSockets through $path closed" line_in "^ws_hold closed=" "$out"
  wait "$hold" || true
  # The proxy closes its side as the client's close reaches it: wait until
  # no connection to the backend is left.
  wait_until 120 "$path's connections to the backend closed" no_upstream
  r2=$(rss_kib "$pid")
  sleep "$SETTLE"
  r3=$(rss_kib "$pid")
  add "open.$path" "$open"; add "failed.$path" "$failed"; add "secs.$path" "$seconds"
  add "held.$path" "$(calc %.1f "($r1 - $r0) / 1024")"
  add "per.$path" "$(calc %.2f "($r1 - $r0) / $open")"
  add "after.$path" "$(calc %.1f "($r3 - $r0) / 1024")"
  add "back.$path" "$(calc %.0f "100 * ($r1 - $r3) / ($r1 - $r0)")"
  log "$path, round $2: $open open, $failed failed in $seconds s; RSS $((r0 / 1024)) → $((r1 / 1024)) MiB held → $((r2 / 1024)) closed → $((r3 / 1024)) MiB after ${SETTLE} s$( [[ -s "$WORK/hold.err" ]] && echo "; $(head -1 "$WORK/hold.err")")"
  rm -f "$WORK/hold.in"
}
for round in $(seq "$ROUNDS"); do
  if (( round % 2 )); then order="gateway haproxy"; else order="haproxy gateway"; fi
  for path in $order; do
    [[ $path == haproxy ]] && start_haproxy
    hold_run "$path" "$round"
    [[ $path == haproxy ]] && stop_haproxy
  done
done

commit=$(build_commit "$DSPOOL")
pkg() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null | sed 's/[-+~].*//'; }
row() {  # path label
  echo "| $2 | $(show "open.$1" %.0f) | $(show "failed.$1" %.0f) | $(show "secs.$1" %.1f) s | $(show "held.$1" %.1f) MiB | $(show "per.$1" %.2f) KiB | $(show "after.$1" %.1f) MiB | $(show "back.$1" %.0f) % |"
}
RESULTS=$(cat <<MD
<!-- bench/ws_capacity.sh results: begin (generated; the next run replaces this block) -->
    sudo $COMMAND_LINE

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r), load average
$LOAD_AT_START at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end; dspool $commit
(\`--gateway-threads $THREADS\`); HAProxy $(pkg haproxy) (http mode, nbthread $THREADS, maxconn $((COUNT + 100))).
$COUNT WebSockets opened (64 handshakes at a time) and held at once through each proxy,
each with TLS, alice's session cookie and one echoed message (bench/ws_hold), to one backend
(bench/http_echo, alice's notebook server in one instance); then all closed. Memory is the
proxy process's VmRSS: growth while they are held, per connection, what is left
${SETTLE} s after they closed, and the share of the growth given back. Figures are the median
of $ROUNDS rounds (min–max), the paths in alternating order; HAProxy is started afresh
for each of its runs (it keeps what it allocated, so a second run in one process would
show no growth), the dspool server runs throughout. This host's hard
RLIMIT_NOFILE is $(ulimit -Hn) and the bench cannot raise it (no CAP_SYS_RESOURCE): a
proxy holds two descriptors a WebSocket, so $COUNT is what fits, not 10,000.

| path | open | failed | to open all | RSS growth held | per connection | left after close | given back |
|---|---|---|---|---|---|---|---|
$(row gateway "dspool gateway")
$(row haproxy "HAProxy")
<!-- bench/ws_capacity.sh results: end -->
MD
)
publish_results ws_capacity.sh "Jupyter: WebSockets held at once, and their memory (issue 13)"
