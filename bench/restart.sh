#!/usr/bin/env bash
# Restarts and upgrades with sessions open (issue 13, point 1): SESSIONS
# connections held through the gateway to an echo server in the pool's
# instance, while a client opens a new connection every 10 ms; then, on the
# gateway's side, a SIGTERM restart of the server, a kill -9 of it, and an
# upgrade of the gateway to a copy of its binary; on the anchor's, HAProxy
# 2.6's seamless reload (master-worker, listeners passed to the new worker).
# Per event: how long it took (the server: from the signal until its API
# answers again; the upgrade: `dspool gateway upgrade`, until the new
# process serves; HAProxy: from SIGUSR2 until its new worker runs), how many
# held connections still echo afterwards, and how many new connections
# failed meanwhile. Each event is repeated ROUNDS times; medians.
#
# Usage: bench/restart.sh BUILD/apps/dspool/dspool [SESSIONS] [ROUNDS]
# Environment: DOCS (docs/benchmarks.md; "-" prints the results only).
# Run as root. Installs haproxy if missing.
set -euo pipefail
COMMAND_LINE="$0 $*"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
DSPOOL=$(realpath "$1")
SESSIONS=${2:-200}
ROUNDS=${3:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
DOCS=${DOCS:-$REPO/docs/benchmarks.md}
source "$REPO/test/integration/lib.sh"
source "$HERE/lib.sh"
require_root_and_lxc
[[ "$SESSIONS" =~ ^[1-9][0-9]*$ ]] || fail "SESSIONS must be a positive number, not '$SESSIONS'"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || fail "ROUNDS must be a positive number, not '$ROUNDS'"
ensure_haproxy
ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d /tmp/dspool-bench-restart.XXXXXX)
DATA=$WORK/data
POOL=rst$RANDOM
POOL=${POOL:0:8}
SUBNET=$(free_subnet)
HA_PID=""
HOLD_PID=""
bench_cleanup() {
  set +e
  [[ -n "$HOLD_PID" ]] && kill "$HOLD_PID" 2>/dev/null && wait "$HOLD_PID" 2>/dev/null
  [[ -n "$HA_PID" ]] && kill "$HA_PID" 2>/dev/null && wait "$HA_PID" 2>/dev/null
  bench_teardown
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK/share"
ssh-keygen -q -t ed25519 -N "" -C "bench admin" -f "$WORK/key"
start_server
GW=$(free_port)
ECHO_GW=$(free_port)
HA=$(free_port)
ssh_pool_spec "$GW" 2 1024 | /usr/bin/python3 -c '
import json, sys
spec = json.load(sys.stdin)
spec["loadBalancer"]["rules"].append({"name": "echo", "frontendPort": int(sys.argv[1]), "backendPort": 7007,
                                      "probe": "ssh", "idleTimeoutInMinutes": 30})
print(json.dumps(spec))' "$ECHO_GW" >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null
wait_ready "$POOL" 1
ADDR=$(instance_addresses "$POOL")
ssh_to() {
  ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o LogLevel=ERROR -o ConnectTimeout=30 -p "$GW" dsvmadmin@127.0.0.1 "$@"
}
wait_until 120 "a login through the gateway" ssh_to true
# The echo server, in the instance (its Python is the host image's).
ssh_to 'nohup /usr/bin/python3 -c "
import socketserver
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)
class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
Server((\"0.0.0.0\", 7007), Echo).serve_forever()
" >/dev/null 2>&1 &'

cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn $(( 4 * SESSIONS + 1000 ))
    stats socket $WORK/haproxy.sock mode 600 level admin expose-fd listeners
defaults
    mode tcp
    timeout connect 5s
    timeout client 30m
    timeout server 30m
listen echo
    bind 127.0.0.1:$HA
    server i0 $ADDR:7007
CFG
haproxy -c -q -f "$WORK/haproxy.cfg" || fail "haproxy rejects $WORK/haproxy.cfg"
haproxy -W -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HA_PID=$!
wait_listening "$HA" haproxy "$WORK/haproxy.log"
wait_until 60 "the echo server through the gateway" \
  /usr/bin/python3 -c 'import socket, sys; s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 3); s.sendall(b"x\n"); sys.exit(s.recv(2) != b"x\n")' "$ECHO_GW"

# hold PORT: the holder, as coprocess H; ask CMD: its one-line answer.
hold() {
  coproc H { exec /usr/bin/python3 "$HERE/echo_hold.py" "$1" "$SESSIONS" 2>>"$WORK/hold.err"; }
  HOLD_PID=$H_PID
  read -r -t 120 ready <&"${H[0]}" || fail "the holder did not open $SESSIONS connections: $(tail -3 "$WORK/hold.err")"
}
ask() {
  echo "$1" >&"${H[1]}"
  local answer
  read -r -t 60 answer <&"${H[0]}" || fail "the holder did not answer '$1': $(tail -3 "$WORK/hold.err")"
  echo "$answer"
}
field() { /usr/bin/python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
unhold() {
  exec {H[1]}>&-
  wait "$HOLD_PID" 2>/dev/null || true
  HOLD_PID=""
}
now_us() { echo $(( $(date +%s%N) / 1000 )); }

declare -A R
# measure NAME PORT ACTION: ROUNDS times: hold SESSIONS, ACTION (in this
# shell, not a subshell: it restarts the server, whose pid it keeps; it
# leaves its time in µs in T_US), check them, count the new connections
# that failed.
measure() {
  local name=$1 port=$2 action=$3 times=() kept=() failed=() i t answer churn
  for ((i = 0; i < ROUNDS; i++)); do
    hold "$port"
    [[ "$(field "$(ask check)" alive)" == "$SESSIONS" ]] || fail "$name: not all $SESSIONS connections echo before"
    ask churn >/dev/null
    "$action"
    t=$T_US
    sleep 1  # the new connections of the second after the event count too
    answer=$(ask check)
    churn=$(ask churn)
    times+=("$t")
    kept+=("$(field "$answer" alive)")
    failed+=("$(field "$churn" failed)/$(field "$churn" tried)")
    unhold
  done
  R[$name.time]=$(printf '%s\n' "${times[@]}" | sort -n | awk '{t[NR] = $1} END {printf "%.0f", t[int((NR + 1) / 2)] / 1000}')
  R[$name.kept]=$(printf '%s\n' "${kept[@]}" | sort -n | awk '{t[NR] = $1} END {print t[int((NR + 1) / 2)]}')
  R[$name.failed]=$(IFS=' '; echo "${failed[*]}")
  echo "bench: $name: median ${R[$name.time]} ms, kept (median) ${R[$name.kept]} of $SESSIONS, new failed ${R[$name.failed]}" >&2
}

server_restart() {
  local t0; t0=$(now_us)
  stop_server
  start_server
  T_US=$(( $(now_us) - t0 ))
}
server_kill() {
  local t0; t0=$(now_us)
  kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  start_server
  T_US=$(( $(now_us) - t0 ))
}
UPGRADES=0
gateway_upgrade() {
  local t0 binary=$WORK/dspool-$((UPGRADES % 2))
  UPGRADES=$((UPGRADES + 1))
  install -m 755 "$DSPOOL" "$binary"
  t0=$(now_us)
  dsp gateway upgrade --binary "$binary" >/dev/null
  T_US=$(( $(now_us) - t0 ))
}
haproxy_reload() {
  local t0 before after
  before=$(pgrep -P "$HA_PID" | sort | tr '\n' ' ')
  t0=$(now_us)
  kill -USR2 "$HA_PID"
  for _ in $(seq 3000); do
    after=$(pgrep -P "$HA_PID" | sort | tr '\n' ' ')
    [[ -n "$after" && "$after" != "$before" ]] && { T_US=$(( $(now_us) - t0 )); return; }
    sleep 0.001
  done
  fail "haproxy's new worker did not start"
}

measure restart "$ECHO_GW" server_restart
measure kill9 "$ECHO_GW" server_kill
measure upgrade "$ECHO_GW" gateway_upgrade
measure reload "$HA" haproxy_reload

commit=$(build_commit "$DSPOOL")
ha_version=$(haproxy -v | awk 'NR == 1 {print $3}')
RESULTS=$(cat <<MD
<!-- bench/restart.sh results: begin (generated; the next run replaces this block) -->
    sudo $COMMAND_LINE

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r), load average
$LOAD_AT_START at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end; dspool $commit; HAProxy
$ha_version (TCP mode, master-worker, \`expose-fd listeners\`). $SESSIONS connections held
through each proxy to one echo server in the pool's instance (2 vCPUs), each checked with one
echo before and after the event; meanwhile a client opens a new connection every 10 ms (one
echo each). $ROUNDS rounds per event, fresh connections each; time and kept are medians;
*new failed* lists each round's failed/tried new connections, from the event to 1 s after it.
Time: the server's restart, from the signal until its API answers again (polled every 100 ms;
the gateway process runs on throughout); the upgrade, \`dspool gateway upgrade\` until the new process serves (its listeners,
notebook sessions and idle connections handed over); HAProxy, from SIGUSR2 to the master until
its new worker runs (the old worker keeps the connections).

| event | time (ms) | kept of $SESSIONS | new failed |
|---|---|---|---|
| dspool server SIGTERM + start | ${R[restart.time]} | ${R[restart.kept]} | ${R[restart.failed]} |
| dspool server kill -9 + start | ${R[kill9.time]} | ${R[kill9.kept]} | ${R[kill9.failed]} |
| dspool gateway upgrade | ${R[upgrade.time]} | ${R[upgrade.kept]} | ${R[upgrade.failed]} |
| HAProxy seamless reload | ${R[reload.time]} | ${R[reload.kept]} | ${R[reload.failed]} |
<!-- bench/restart.sh results: end -->
MD
)
publish_results restart.sh "Restarts and upgrades with sessions open (issue 13, point 1)"
