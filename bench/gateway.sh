#!/usr/bin/env bash
# The gateway side by side with HAProxy 2.6 (the anchor) and the direct path
# (client on the host → the instance's bridge address), in one run, on one
# pool of one LXC instance, under equal conditions: every connection from
# the host to the instance (HAProxy's, the direct client's, the gateway's)
# uses the same TCP congestion control (a `congctl` on the pool's subnet
# route for the run, the gateway's own choice: see EQUAL_CC):
#   1. iperf3 throughput, 1 and 4 streams, uploads and downloads (-R)
#      (iperf3 -s runs in the instance), and the proxy's CPU per GB;
#   2. `ssh host true` (hyperfine): through the gateway and HAProxy vs direct;
#   3. memory per idle connection with CONNS connections held: the proxy
#      process's RSS, and the kernel's slab growth (sockets, files, epoll
#      entries, pipes), less what the direct path costs;
#   4. new connections per second: connect, read a 1-byte greeting, close.
# The backend of 3 and 4 is bench/tcp_load (serve mode) in the instance; the
# clients are bench/tcp_load on the host.
#
# Usage: bench/gateway.sh BUILD/apps/dspool/dspool [THREADS] [CONNS] [SECONDS]
#   THREADS  --gateway-threads, and HAProxy's nbthread (default: 2)
#   CONNS    idle connections held for the memory measure (default: 5000)
#   SECONDS  length of each iperf3 and connection-rate run (default: 10)
# Environment: ROUNDS (5: rounds of the memory, rate and iperf3 measures,
#   each in another order of the paths; 6 balance the orders fully; figures
#   are medians with the range over rounds), SSH_RUNS (60 per path), SSH_ROUNDS (12),
#   RATE_CLIENTS (32), RATE_THREADS (1),
#   HA_SPLICE (always: option splice-request + splice-response, HAProxy's
#   faster setting here; auto: option splice-auto),
#   TCP_LOAD (default: BUILD/bench/tcp_load, next to the dspool binary),
#   HOST_CC (the host's default TCP congestion control for the run, say
#   cubic: HAProxy's, the clients' and the instance's connections use it;
#   default: as the host has it), GW_CC (--gateway-congestion-control:
#   the gateway's connections to the instance; default: the server's, cubic),
#   EQUAL_CC (1: the pool's subnet route gets `congctl GW_CC` for the run,
#   so HAProxy's and the direct client's connections to the instance use
#   the gateway's algorithm too, and it is put back on exit; 0: they use
#   the host's default, the product note of docs/benchmarks.md),
#   DOCS (docs/benchmarks.md; "-" prints the results only).
# Run as root. Installs haproxy, iperf3 and hyperfine if missing. Writes the
# results between this script's markers in docs/benchmarks.md (appending the
# section the first time) and prints them. While it runs it sets
# net.ipv4.tcp_tw_reuse=1 and raises nf_conntrack_max (the connection-rate
# runs would otherwise run out of ports or conntrack entries); both are put
# back on exit.
set -euo pipefail
COMMAND_LINE="$0 $*"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
for v in EQUAL_CC GW_CC HOST_CC TCP_LOAD HA_SPLICE RATE_THREADS RATE_CLIENTS SSH_ROUNDS SSH_RUNS ROUNDS; do
  [[ -n "${!v:-}" ]] && COMMAND_LINE="$v=${!v} $COMMAND_LINE"
done
DSPOOL=$(realpath "$1")
THREADS=${2:-2}
CONNS=${3:-5000}
SECS=${4:-10}
ROUNDS=${ROUNDS:-5}
EQUAL_CC=${EQUAL_CC:-1}
SSH_RUNS=${SSH_RUNS:-60}
SSH_ROUNDS=${SSH_ROUNDS:-12}
RATE_CLIENTS=${RATE_CLIENTS:-32}
RATE_THREADS=${RATE_THREADS:-1}
HA_SPLICE=${HA_SPLICE:-always}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TCP_LOAD=$(realpath "${TCP_LOAD:-$(dirname "$DSPOOL")/../../bench/tcp_load}")
DOCS=${DOCS:-$REPO/docs/benchmarks.md}
source "$REPO/test/integration/lib.sh"
source "$HERE/lib.sh"
require_root_and_lxc
[[ -x "$TCP_LOAD" ]] || fail "no $TCP_LOAD: build it (cmake --build build --target tcp_load) or set TCP_LOAD"
[[ "$HA_SPLICE" == auto || "$HA_SPLICE" == always ]] || fail "HA_SPLICE must be auto or always"

# The anchors, from Debian. Before the pool exists: an instance's root file
# system is the host's, so the instance sees the iperf3 installed here.
need=()
for p in haproxy iperf3 hyperfine; do command -v "$p" >/dev/null || need+=("$p"); done
if ((${#need[@]})); then
  echo "bench: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Every proxied connection takes 2 descriptors in the proxy; HAProxy reserves
# 2 per maxconn and per pipe. The hard limit may not be raisable here.
ulimit -n "$(ulimit -Hn)"
(( 2 * (CONNS + 1000) + 2 * 1024 + 100 <= $(ulimit -Hn) )) \
  || fail "CONNS=$CONNS needs about $(( 2 * (CONNS + 1000) + 2148 )) descriptors; the hard limit is $(ulimit -Hn)"

WORK=$(mktemp -d /tmp/dspool-bench-gw.XXXXXX)
DATA=$WORK/data
POOL=gwb$RANDOM
POOL=${POOL:0:8}
SUBNET=$(free_subnet)
ADMIN=benchadm
HA_PID=""
LOAD_PID=""
SAVED_SYSCTLS=()
SAVED_ROUTE=""

set_sysctl() {  # key value: remembered, put back on exit
  SAVED_SYSCTLS+=("$1=$(sysctl -n "$1")")
  sysctl -q -w "$1=$2" >/dev/null || fail "sysctl $1=$2 refused"
}

bench_cleanup() {
  set +e
  [[ -n "$LOAD_PID" ]] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
  [[ -n "$HA_PID" ]] && kill "$HA_PID" 2>/dev/null && wait "$HA_PID" 2>/dev/null
  local s
  for s in "${SAVED_SYSCTLS[@]}"; do sysctl -q -w "$s" >/dev/null; done
  # shellcheck disable=SC2086 # the route as `ip route` printed it, word by word
  [[ -n "$SAVED_ROUTE" ]] && ip route replace $SAVED_ROUTE
  bench_teardown  # bench/lib.sh: the pool, then the server, containers, bridge, WORK
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# Ports below the ephemeral range (32768+) that nothing listens on.
free_ports() {  # N
  local p got=()
  for p in $(shuf -i 20000-32000 -n 400); do
    ss -Htln "sport = :$p" | grep -q . && continue
    got+=("$p")
    ((${#got[@]} == $1)) && { echo "${got[@]}"; return; }
  done
  fail "fewer than $1 free ports"
}
read -r GW_SSH GW_IPERF GW_LOAD NAT HA_SSH HA_IPERF HA_LOAD <<<"$(free_ports 7)"
LOAD_PORT=5999  # tcp_load serve, in the instance
PROBE_INTERVAL=60

# lib.sh's start_server, with the gateway's thread count.
mkdir -p "$WORK/share"
chmod 711 "$WORK"
ssh-keygen -q -t ed25519 -N "" -C "bench admin" -f "$WORK/key"
# Before the pool: an instance's network namespace takes the host's default
# congestion control when it is made.
[[ -n "${HOST_CC:-}" ]] && set_sysctl net.ipv4.tcp_congestion_control "$HOST_CC"
"$DSPOOL" server --data-dir "$DATA" --log-level info --gateway-threads "$THREADS" \
  ${GW_CC:+--gateway-congestion-control "$GW_CC"} >>"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do dsp status >/dev/null 2>&1 && break; sleep 0.1; done
dsp status >/dev/null 2>&1 || { cat "$WORK/server.log"; fail "server did not answer"; }

rule() {  # name frontendPort backendPort
  echo "{\"name\": \"$1\", \"frontendPort\": $2, \"backendPort\": $3, \"probe\": \"$1\"}"
}
probe() {  # name port
  echo "{\"name\": \"$1\", \"protocol\": \"Tcp\", \"port\": $2, \"intervalInSeconds\": $PROBE_INTERVAL}"
}
cat >"$WORK/spec.json" <<JSON
{"name": "$POOL", "instanceCount": 1,
 "size": {"vcpus": 2, "memoryMiB": 2048},
 "network": {"subnet": "$SUBNET"},
 "share": {"type": "bind", "source": "$WORK/share"},
 "adminUser": {"name": "$ADMIN", "sshPublicKey": "$(cat "$WORK/key.pub")"},
 "loadBalancer": {
   "rules": [$(rule ssh "$GW_SSH" 22), $(rule iperf "$GW_IPERF" 5201), $(rule load "$GW_LOAD" $LOAD_PORT)],
   "probes": [$(probe ssh 22), $(probe iperf 5201), $(probe load $LOAD_PORT)],
   "inboundNatPools": [{"name": "admin", "frontendPortRangeStart": $NAT, "frontendPortRangeEnd": $NAT,
                        "backendPort": 22}]}}
JSON
dsp pool create -f "$WORK/spec.json" >/dev/null
wait_ready "$POOL" 1
ADDR=$(instance_addresses "$POOL")
# Equal conditions: the host's connections to the instance (HAProxy's
# backend connections, the direct client) take the congestion control the
# gateway sets on its own (TCP_CONGESTION beats a route's congctl).
EQ_CC=${GW_CC:-cubic}
[[ "$EQ_CC" == default ]] && EQ_CC=$(sysctl -n net.ipv4.tcp_congestion_control)
if [[ "$EQUAL_CC" == 1 ]]; then
  SAVED_ROUTE=$(ip -o route show "$SUBNET" | head -1)
  [[ -n "$SAVED_ROUTE" ]] || fail "no route to the pool's subnet $SUBNET"
  # shellcheck disable=SC2086
  ip route replace $SAVED_ROUTE congctl "$EQ_CC" || fail "ip route replace $SAVED_ROUTE congctl $EQ_CC"
  ip route get "$ADDR" | grep -q "congctl $EQ_CC" || fail "the route to $ADDR does not take congctl $EQ_CC"
  # The instance's own senders (downloads: iperf3 -R) too: its network
  # namespace's default, before its servers start (the instance goes with
  # the pool at the end).
  INIT_PID=$(lxc-info -P "$DATA/lxc/containers" -n "$(first_instance "$POOL")" -p -H)
  # A network namespace other than the host's may only take an algorithm
  # the host allows (tcp_allowed_congestion_control; EPERM otherwise).
  allowed=$(sysctl -n net.ipv4.tcp_allowed_congestion_control)
  [[ " $allowed " == *" $EQ_CC "* ]] || set_sysctl net.ipv4.tcp_allowed_congestion_control "$allowed $EQ_CC"
  nsenter -t "$INIT_PID" -n sysctl -q -w net.ipv4.tcp_congestion_control="$EQ_CC" \
    || fail "could not set the instance's congestion control to $EQ_CC"
fi

SSH_OPTS=(-i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
          -o LogLevel=ERROR -o ConnectTimeout=10)
admin_ssh() { ssh "${SSH_OPTS[@]}" -p "$NAT" "$ADMIN@127.0.0.1" "$@"; }
for _ in $(seq 50); do admin_ssh true 2>/dev/null && break; sleep 0.2; done

# The backends, started over SSH through the instance's NAT port. tcp_load
# comes through the share (the build tree may lie under a path instances do
# not see, such as /root or /tmp).
mkdir -p "$WORK/share/bench"
install -m 755 "$TCP_LOAD" "$WORK/share/bench/tcp_load"
admin_ssh "iperf3 -s -D -p 5201 && \
  (setsid /datamnt/dsvmshare/bench/tcp_load serve $LOAD_PORT >~/tcp_load.log 2>&1 </dev/null &) && \
  echo \"instance descriptor limit: \$(ulimit -Hn)\"" >&2

health() {
  dsp instance list --pool "$POOL" -o json | python3 -c "
import json, sys
for i in json.load(sys.stdin)['instances']: print(i.get('health', {}).get('state', 'none'))"
}
for _ in $(seq 100); do [[ "$(health)" == healthy ]] && break; sleep 0.2; done
[[ "$(health)" == healthy ]] || fail "the instance's probes (22, 5201, $LOAD_PORT) did not all pass: $(health)"

# HAProxy: same backend, same thread count, TCP mode with splicing, checks
# as often as the gateway's probes, and a log line per connection (option
# tcplog), as the gateway writes one at info level (the client, the
# instance, and the address the instance sees).
if [[ "$HA_SPLICE" == auto ]]; then splice="option splice-auto"; else
  splice=$'option splice-request\n    option splice-response'; fi
cat >"$WORK/haproxy.cfg" <<CFG
global
    nbthread $THREADS
    log stdout format raw local0 info
    maxconn $(( CONNS + 1000 ))
    maxpipes 1024
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 30m
    timeout server 30m
    $splice
listen ssh
    bind 0.0.0.0:$HA_SSH
    server i0 $ADDR:22 check inter ${PROBE_INTERVAL}s
listen iperf
    bind 0.0.0.0:$HA_IPERF
    server i0 $ADDR:5201 check inter ${PROBE_INTERVAL}s
listen load
    bind 0.0.0.0:$HA_LOAD
    server i0 $ADDR:$LOAD_PORT check inter ${PROBE_INTERVAL}s
CFG
haproxy -c -q -f "$WORK/haproxy.cfg" || fail "haproxy rejects $WORK/haproxy.cfg"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HA_PID=$!
wait_listening "$HA_LOAD" haproxy "$WORK/haproxy.log"

set_sysctl net.ipv4.tcp_tw_reuse 1
[[ -e /proc/sys/net/netfilter/nf_conntrack_max ]] && set_sysctl net.netfilter.nf_conntrack_max 2097152

# ---- helpers ----
declare -A PID_OF=([direct]="" [gateway]=$(gateway_pid) [haproxy]=$HA_PID)
declare -A LOAD_AT=([direct]=$ADDR:$LOAD_PORT [gateway]=127.0.0.1:$GW_LOAD [haproxy]=127.0.0.1:$HA_LOAD)
declare -A IPERF_AT=([direct]="$ADDR 5201" [gateway]="127.0.0.1 $GW_IPERF" [haproxy]="127.0.0.1 $HA_IPERF")
PATHS=(direct gateway haproxy)
# Round r runs the paths in the r-th of these orders (cyclically): any three
# rounds in a row put each path first, second and last once, and six rounds
# also after each other path once, so neither a drift of the machine nor
# what one run leaves behind (caches, TCP metrics, memory) favours a path.
ORDERS=("direct gateway haproxy" "gateway haproxy direct" "haproxy direct gateway"
        "haproxy gateway direct" "gateway direct haproxy" "direct haproxy gateway")
paths_for() { echo "${ORDERS[$(( ($1 - 1) % 6 ))]}"; }
# The half-width of the 95 % confidence interval of V[key]'s mean: Student's
# t(0.975, n − 1) × s / √n ("nan" from fewer than 2 values).
ci95() { tr ' ' '\n' <<<"${V[$1]}" | awk -v f="${2:-%.3f}" 'NF {x[n++] = $1; s += $1} END {
  if (n < 2) { print "nan"; exit }
  m = s / n; for (i = 0; i < n; i++) ss += (x[i] - m) ^ 2
  split("12.71 4.30 3.18 2.78 2.57 2.45 2.36 2.31 2.26 2.23 2.20 2.18", T, " ")
  df = n - 1; t = df <= 12 ? T[df] : (df < 30 ? 2.1 : 1.96)
  printf f, t * sqrt(ss / df / n) }'; }
HZ=$(getconf CLK_TCK)
# Slab caches and their bytes. proc_inode_cache is left out: a monitor of
# this machine (no part of the project) walks /proc/PID/fd now and then,
# which makes a proc inode per open descriptor of the process it looks at.
slab_bytes() { awk 'NR > 2 && $1 != "proc_inode_cache" {print $1, $3 * $4}' /proc/slabinfo | sort; }
slab_sum() { awk '{s += $2} END {print s}' "$1"; }
# Reclaimable dentries and inodes that nothing holds (say, /proc entries a
# monitor listed) go before a memory sample; those of open sockets stay.
quiet_slab() { sync; echo 2 >/proc/sys/vm/drop_caches; sleep 1; }
time_wait() { ss -Htan state time-wait | wc -l; }
metric() { curl -s --unix-socket "$DATA/api.sock" http://x/metrics | awk -v k="$1" '$1 == k {print $2}'; }

# ---- 3. memory per idle connection (first: nothing else has run yet) ----
# RSS is measured from the process as it was before any connection: an
# allocator keeps what it freed, so a second round's growth would be nil.
declare -A SLAB_TOP RSS_BASE
for path in "${PATHS[@]}"; do RSS_BASE[$path]=$(rss_kib "${PID_OF[$path]}"); done
for round in $(seq "$ROUNDS"); do
  for path in $(paths_for "$round"); do
    pid=${PID_OF[$path]}
    quiet_slab
    rss0=${RSS_BASE[$path]}; slab_bytes >"$WORK/slab0"; slab0=$(slab_sum "$WORK/slab0"); tw0=$(time_wait)
    "$TCP_LOAD" hold "${LOAD_AT[$path]}" "$CONNS" 120 >"$WORK/hold.$path.log" 2>&1 &
    LOAD_PID=$!
    until grep -q '^ready\|^timeout' "$WORK/hold.$path.log"; do
      kill -0 "$LOAD_PID" 2>/dev/null || break
      sleep 0.2
    done
    if ! grep -q "^ready greeted=$CONNS failed=0" "$WORK/hold.$path.log"; then
      rc=0; kill -0 "$LOAD_PID" 2>/dev/null || wait "$LOAD_PID" || rc=$?
      fail "$path: holding $CONNS (tcp_load exit $rc): $(cat "$WORK/hold.$path.log")"
    fi
    sleep 2
    quiet_slab
    rss1=$(rss_kib "$pid"); slab_bytes >"$WORK/slab1"; slab1=$(slab_sum "$WORK/slab1"); tw1=$(time_wait)
    kill -TERM "$LOAD_PID"; wait "$LOAD_PID" || true; LOAD_PID=""
    grep -q "^held=$CONNS dropped=0" "$WORK/hold.$path.log" || fail "$path: connections dropped: $(cat "$WORK/hold.$path.log")"
    add "rss.$path" "$(calc %.0f "($rss1 - $rss0) * 1024 / $CONNS")"
    add "slab.$path.$round" "$(calc %.0f "($slab1 - $slab0) / $CONNS")"
    add "slab.$path" "$(calc %.0f "($slab1 - $slab0) / $CONNS")"
    # The slab caches that grew most, in bytes per connection.
    SLAB_TOP[$path]=$(join "$WORK/slab0" "$WORK/slab1" | awk -v n="$CONNS" '{d = ($3 - $2) / n; if (d >= 32) printf "%s %d\n", $1, d}' \
                      | sort -k2 -nr | head -7 | awk '{printf "%s%s %d", (NR > 1 ? ", " : ""), $1, $2}')
    log "memory $path, round $round: RSS +$((rss1 - rss0)) KiB since before round 1, slab +$(( (slab1 - slab0) / 1024 )) KiB, TIME_WAIT $tw0 → $tw1; ${SLAB_TOP[$path]}"
    # Let what closing left behind (TIME_WAIT, conntrack) expire a little.
    sleep 2
  done
  for path in gateway haproxy; do
    slab_share=$(( ${V[slab.$path.$round]# } - ${V[slab.direct.$round]# } ))
    add "share.$path" "$(( slab_share + $(awk '{print $NF}' <<<"${V[rss.$path]}") ))"
  done
done

# ---- 4. connection rate ----
relayed0=$(metric dspool_gateway_connections_relayed_total); errors0=$(metric dspool_gateway_relay_errors_total)
for round in $(seq "$ROUNDS"); do
  for path in $(paths_for "$round"); do
    pid=${PID_OF[$path]}
    sleep 2
    c0=$(cpu_ticks "$pid")
    out=$("$TCP_LOAD" rate "${LOAD_AT[$path]}" "$RATE_CLIENTS" "$SECS" "$RATE_THREADS")
    c1=$(cpu_ticks "$pid")
    log "rate $path, round $round: $out"
    field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$out"; }
    add "rate.$path" "$(field per_sec)"; add "p50.$path" "$(field p50_us)"; add "p99.$path" "$(field p99_us)"
    add "err.$path" "$(field errors)"
    add "ratecpu.$path" "$(calc %.0f "100 * ($c1 - $c0) / $HZ / $(field seconds)")"
    # CPU time per connection, in µs.
    add "cpuconn.$path" "$(calc %.1f "1e6 * ($c1 - $c0) / $HZ / ($(field conns) + 0.001)")"
  done
  add ratio.rate "$(calc %.4f "$(last rate.gateway) / $(last rate.haproxy)")"
  # One client: the latency a proxy adds to setting up a connection.
  for path in $(paths_for "$round"); do
    out=$("$TCP_LOAD" rate "${LOAD_AT[$path]}" 1 3)
    log "latency $path, round $round: $out"
    add "lat50.$path" "$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$out")"
    add "lat99.$path" "$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$out")"
  done
done
relayed1=$(metric dspool_gateway_connections_relayed_total); errors1=$(metric dspool_gateway_relay_errors_total)
# Relay errors: the clients reset what is open at each run's deadline.
log "gateway counters over the rate runs: connections relayed +$((relayed1 - relayed0)), relay errors +$((errors1 - errors0)); connect failures in all $(metric dspool_gateway_connect_failures_total)"

# ---- 1. throughput ----
# DIR "up": the client on the host sends (the proxy sends towards the
# instance); "down": iperf3 -R, the instance sends.
iperf_run() {  # path streams dir
  local host port c0 c1 t0 t1 try gbps cpu reverse=()
  read -r host port <<<"${IPERF_AT[$1]}"
  [[ $3 == down ]] && reverse=(-R)
  for try in 1 2 3; do
    c0=$(cpu_ticks "${PID_OF[$1]}"); t0=$(date +%s%N)
    if iperf3 -c "$host" -p "$port" -t "$SECS" -P "$2" "${reverse[@]}" -J >"$WORK/iperf.json" 2>&1; then
      c1=$(cpu_ticks "${PID_OF[$1]}"); t1=$(date +%s%N)
      gbps=$(python3 -c "import json; print('%.2f' % (json.load(open('$WORK/iperf.json'))['end']['sum_received']['bits_per_second'] / 1e9))")
      cpu=$(calc %.1f "100 * ($c1 - $c0) / $HZ / (($t1 - $t0) / 1e9)")
      add "gbps.$1.$2.$3" "$gbps"
      add "cpu.$1.$2.$3" "$cpu"
      # The proxy's CPU time per GB relayed, in ms: CPU seconds per second
      # over GB per second.
      add "cpugb.$1.$2.$3" "$(calc %.1f "1000 * ($cpu / 100) / ($gbps / 8)")"
      log "iperf3 $1 -P $2 $3: $gbps Gbit/s, proxy CPU $cpu %"
      return
    fi
    log "iperf3 $1 -P $2 $3, try $try: $(grep -o '"error":.*' "$WORK/iperf.json" || tail -2 "$WORK/iperf.json")"
    sleep 2
  done
  fail "iperf3 through $1 ($3) failed 3 times"
}
for round in $(seq "$ROUNDS"); do
  for dir in up down; do
    for streams in 1 4; do
      for path in $(paths_for "$round"); do sleep 1; iperf_run "$path" "$streams" "$dir"; done
      add "ratio.gbps.$streams.$dir" "$(calc %.4f "$(last gbps.gateway.$streams.$dir) / $(last gbps.haproxy.$streams.$dir)")"
      add "ratio.cpugb.$streams.$dir" "$(calc %.4f "$(last cpugb.gateway.$streams.$dir) / $(last cpugb.haproxy.$streams.$dir)")"
    done
  done
done

# ---- 2. ssh host true ----
# hyperfine runs one command's runs after the other's, so a change in the
# machine's load between them (other work on a shared machine) would read as
# overhead: SSH_ROUNDS short rounds, each in another order of the paths, and
# the overhead's confidence interval from the per-round differences.
ssh_cmd() {  # path
  case $1 in
    direct) echo "ssh ${SSH_OPTS[*]} -n $ADMIN@$ADDR true" ;;
    gateway) echo "ssh ${SSH_OPTS[*]} -n -p $GW_SSH $ADMIN@127.0.0.1 true" ;;
    haproxy) echo "ssh ${SSH_OPTS[*]} -n -p $HA_SSH $ADMIN@127.0.0.1 true" ;;
  esac
}
ssh_per_round=$(( (SSH_RUNS + SSH_ROUNDS - 1) / SSH_ROUNDS ))
for round in $(seq "$SSH_ROUNDS"); do
  args=()
  for path in $(paths_for "$round"); do args+=(-n "$path" "$(ssh_cmd "$path")"); done
  hyperfine -N --warmup "$([[ $round == 1 ]] && echo 3 || echo 1)" --runs "$ssh_per_round" --export-json "$WORK/ssh.$round.json" "${args[@]}" >"$WORK/hyperfine.log" 2>&1 \
    || { cat "$WORK/hyperfine.log"; fail "hyperfine failed"; }
done
# Per path: runs, mean, σ, median (ms); and per round, its mean's difference
# from direct's (paired by round): ci95 turns those into the interval of the
# overhead.
declare -A SSH_MEAN SSH_SD SSH_MED SSH_N SSH_CI
while read -r name n m sd med diffs; do
  SSH_N[$name]=$n; SSH_MEAN[$name]=$m; SSH_SD[$name]=$sd; SSH_MED[$name]=$med
  V[sshdiff.$name]=$diffs; SSH_CI[$name]=$(ci95 "sshdiff.$name" %.2f)
done < <(python3 - "$WORK"/ssh.*.json <<'PY'
import json, statistics, sys
times, rounds = {}, []
for f in sys.argv[1:]:
    means = {}
    for r in json.load(open(f))["results"]:
        ms = [t * 1e3 for t in r["times"]]
        times.setdefault(r["command"], []).extend(ms)
        means[r["command"]] = statistics.mean(ms)
    rounds.append(means)
for name, t in times.items():
    diffs = " ".join("%.4f" % (m[name] - m["direct"]) for m in rounds)
    print(name, len(t), "%.2f" % statistics.mean(t), "%.2f" % statistics.stdev(t), "%.2f" % statistics.median(t), diffs)
PY
)
log "ssh: $(for p in "${PATHS[@]}"; do echo -n "$p ${SSH_MEAN[$p]} ms (median ${SSH_MED[$p]}); "; done)"

# ---- the results ----
ratio() { calc %.2f "($1) / ($2)"; }
ssh_overhead() {  # path: "+1.23 ms ± 2.00 (+0.5 % ± 0.8)"
  local d=${SSH_MEAN[direct]}
  echo "$(calc %+.2f "${SSH_MEAN[$1]} - $d") ms ± ${SSH_CI[$1]} ($(calc %+.1f "100 * (${SSH_MEAN[$1]} - $d) / $d") % ± $(calc %.1f "100 * ${SSH_CI[$1]} / $d"))"
}
ssh_resolution() {  # path: whether the 95 % interval settles the 2 % goal
  local lo hi limit
  lo=$(calc %.3f "${SSH_MEAN[$1]} - ${SSH_MEAN[direct]} - ${SSH_CI[$1]}")
  hi=$(calc %.3f "${SSH_MEAN[$1]} - ${SSH_MEAN[direct]} + ${SSH_CI[$1]}")
  limit=$(calc %.3f "0.02 * ${SSH_MEAN[direct]}")
  if awk "BEGIN { exit !($hi < $limit) }"; then echo "the whole 95 % interval lies below 2 %"
  elif awk "BEGIN { exit !($lo > $limit) }"; then echo "the whole 95 % interval lies above 2 %"
  else echo "the 95 % interval includes 2 %: this run cannot tell (more SSH_RUNS, a quieter machine)"; fi
}
ratio_interval() {  # key of per-round ratios: "0.99 (0.97–1.02), the range includes 1"
  local lo hi
  read -r lo hi < <(tr ' ' '\n' <<<"${V[$1]}" | sort -g | awk 'NF {x[++n] = $1} END {print x[1], x[n]}')
  echo -n "$(median "$1")$(range "$1"), "
  if awk "BEGIN { exit !($lo > 1) }"; then echo "every round above 1"
  elif awk "BEGIN { exit !($hi < 1) }"; then echo "every round below 1"
  else echo "the range includes 1"; fi
}
verdict() { [[ $(awk "BEGIN { print ($1) ? 1 : 0 }") == 1 ]] && echo met || echo "**missed**"; }
ha_version=$(haproxy -v | awk 'NR == 1 {print $3}')
HOST_CC_NOW=$(sysctl -n net.ipv4.tcp_congestion_control)
[[ "${GW_CC:-}" == default ]] && GW_CC="$HOST_CC_NOW (the host's)"
iperf_version=$(iperf3 --version | awk 'NR == 1 {print $2}')
commit=$(build_commit "$DSPOOL")
splice_text=$([[ "$HA_SPLICE" == auto ]] && echo "option splice-auto" || echo "option splice-request + splice-response")
m() { median "$1" "${2:-%.2f}"; }
# ", per round 0.85–1.01" when there were several rounds.
per_round() { tr ' ' '\n' <<<"${V[$1]}" | awk 'NF {if (n == 0 || $1 < lo) lo = $1; if (n == 0 || $1 > hi) hi = $1; n++}
  END {if (n > 1) printf ", per round %.2f–%.2f", lo, hi}'; }
# cells KEY [FORMAT]: the four throughput columns of V[KEY.<streams>.<dir>], as table cells.
cells() { local c; for c in 1.up 4.up 1.down 4.down; do echo -n " $(show "$1.$c" "${2:-%.2f}") |"; done; }
# tput_goal: the issue's goal per column: throughput ≥ HAProxy's and CPU per GB ≤ HAProxy's (medians).
tput_goal() {
  local c label sep=""
  for c in 1.up 4.up 1.down 4.down; do
    label=$(sed 's/^1\./1 stream /; s/^4\./4 streams /' <<<"$c")
    echo -n "$sep$label: throughput $(verdict "$(m gbps.gateway.$c) >= $(m gbps.haproxy.$c)"), CPU per GB $(verdict "$(m cpugb.gateway.$c) <= $(m cpugb.haproxy.$c)")"
    sep="; "
  done
  echo .
}
RSS_G=$(m rss.gateway %.0f); RSS_H=$(m rss.haproxy %.0f)
SH_G=$(m share.gateway %.0f); SH_H=$(m share.haproxy %.0f)
rounds_text=$([[ $ROUNDS == 1 ]] && echo "from one round" || echo "the median of $ROUNDS rounds (min–max)")
if [[ "$EQUAL_CC" == 1 ]]; then
  cc_text="every connection between the host and the instance uses $EQ_CC: the gateway's
(\`--gateway-congestion-control\`), HAProxy's and the direct client's by a \`congctl $EQ_CC\` on the
pool's subnet route for the run (put back after), the instance's by its network namespace's
default, set for the run. The clients' connections to the proxies (loopback) use the host's
default, $HOST_CC_NOW, for both proxies alike"
else
  cc_text="the host's default is $HOST_CC_NOW (HAProxy's connections, the clients', the instance's); the
gateway's connections to the instance use ${GW_CC:-cubic} (\`--gateway-congestion-control\`): **not equal
conditions** (EQUAL_CC=0), what the gateway's choice buys on such a host"
fi

RESULTS=$(cat <<MD
<!-- bench/gateway.sh results: begin (generated; the next run replaces this block) -->
    sudo $COMMAND_LINE

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r), load average
$LOAD_AT_START at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end; dspool $commit; HAProxy $ha_version ($splice_text,
nbthread $THREADS, \`option tcplog\` to its standard output) vs \`--gateway-threads $THREADS\` (plus the gateway's
control thread; \`--log-level info\`, a line per connection to the server's log): each logs every connection;
iperf3 $iperf_version. One instance (2 vCPUs) on the pool's bridge; clients on the host; the
proxies on the host, listening on 0.0.0.0, reached at 127.0.0.1. TCP congestion control:
$cc_text. Figures are $rounds_text.

**Throughput**, iperf3 ${SECS} s to \`iperf3 -s\` in the instance, Gbit/s. *Up*: the client sends
(the proxy sends to the instance); *down*: \`iperf3 -R\`, the instance sends. The ratios are
the median (min–max) of each round's gateway / HAProxy.

| path | up, 1 stream | up, 4 streams | down, 1 stream | down, 4 streams |
|---|---|---|---|---|
| direct (reference) |$(cells gbps.direct)
| gateway |$(cells gbps.gateway)
| HAProxy |$(cells gbps.haproxy)
| gateway / HAProxy |$(cells ratio.gbps)

**Proxy CPU per GB relayed**, ms: the proxy process's user + system time over the run
divided by the bytes iperf3 received (100 % CPU at 8 Gbit/s is 1000 ms per GB):

| path | up, 1 stream | up, 4 streams | down, 1 stream | down, 4 streams |
|---|---|---|---|---|
| gateway |$(cells cpugb.gateway %.0f)
| HAProxy |$(cells cpugb.haproxy %.0f)
| gateway / HAProxy |$(cells ratio.cpugb)

**SSH**, \`ssh host true\` with a key (hyperfine -N, ${SSH_N[direct]} runs per path in $SSH_ROUNDS
short rounds, each in another order of the paths; the interval is over the per-round
differences):

| path | mean ± σ | median | overhead vs direct (mean, ± 95 % CI) |
|---|---|---|---|
| direct | ${SSH_MEAN[direct]} ± ${SSH_SD[direct]} ms | ${SSH_MED[direct]} ms | – |
| gateway | ${SSH_MEAN[gateway]} ± ${SSH_SD[gateway]} ms | ${SSH_MED[gateway]} ms | $(ssh_overhead gateway) |
| HAProxy | ${SSH_MEAN[haproxy]} ± ${SSH_SD[haproxy]} ms | ${SSH_MED[haproxy]} ms | $(ssh_overhead haproxy) |

**Memory per idle connection**, $CONNS connections held open (each read its backend's
1-byte greeting, then idle), bytes per connection. *RSS*: the proxy process's growth over
its RSS before the first round (the gateway process, \`dspool gateway\`). *Slab*: the kernel's slab growth,
system-wide (sockets, files, epoll entries, pipes, conntrack), sampled after dropping
reclaimable dentries and inodes, without proc_inode_cache (a monitor of this machine
walks /proc/PID/fd, making an inode per descriptor of what it looks at); the direct path's is what the clients, the backend and
the host's connection tracking cost without a proxy. *Proxy's share*: RSS + slab − the
direct path's slab.

| path | RSS | slab | proxy's share |
|---|---|---|---|
| direct | – | $(show slab.direct %.0f) | – |
| gateway | $(show rss.gateway %.0f) | $(show slab.gateway %.0f) | $(show share.gateway %.0f) |
| HAProxy | $(show rss.haproxy %.0f) | $(show slab.haproxy %.0f) | $(show share.haproxy %.0f) |
| gateway / HAProxy | $(ratio "$RSS_G + 0.5" "$RSS_H + 0.5") | | $(ratio "$SH_G" "$SH_H") |

Slab caches that grew most, bytes per connection (last round): direct: ${SLAB_TOP[direct]};
gateway: ${SLAB_TOP[gateway]}; HAProxy: ${SLAB_TOP[haproxy]}.

**New connections per second**, $RATE_CLIENTS concurrent clients ($RATE_THREADS client thread),
${SECS} s each: connect, read the backend's 1-byte greeting, close (latency: connect until the
greeting arrived; proxy CPU as above, and per connection):

| path | conns/s | p50 | p99 | errors | proxy CPU | CPU per connection |
|---|---|---|---|---|---|---|
| direct | $(show rate.direct %.0f) | $(m p50.direct %.0f) µs | $(m p99.direct %.0f) µs | $(m err.direct %.0f) | – | – |
| gateway | $(show rate.gateway %.0f) | $(m p50.gateway %.0f) µs | $(m p99.gateway %.0f) µs | $(m err.gateway %.0f) | $(m ratecpu.gateway %.0f) % | $(m cpuconn.gateway %.1f) µs |
| HAProxy | $(show rate.haproxy %.0f) | $(m p50.haproxy %.0f) µs | $(m p99.haproxy %.0f) µs | $(m err.haproxy %.0f) | $(m ratecpu.haproxy %.0f) % | $(m cpuconn.haproxy %.1f) µs |
| gateway / HAProxy | $(ratio "$(m rate.gateway)" "$(m rate.haproxy)")$(per_round ratio.rate) | | | | | $(ratio "$(m cpuconn.gateway)" "$(m cpuconn.haproxy)") |

Connection set-up latency with one client (3 s per path and round; connect until the
greeting arrived): direct p50 $(m lat50.direct %.0f) µs, p99 $(m lat99.direct %.0f) µs; gateway p50
$(m lat50.gateway %.0f) µs, p99 $(m lat99.gateway %.0f) µs; HAProxy p50 $(m lat50.haproxy %.0f) µs, p99 $(m lat99.haproxy %.0f) µs.

Goals, this run (medians; issue 14 for TCP, issue 4 for SSH and memory):
- throughput ≥ HAProxy's at no more CPU per GB: $(tput_goal)
- new connections per second ≥ HAProxy's: $(verdict "$(m rate.gateway) >= $(m rate.haproxy)"), per-round ratio
  $(ratio_interval ratio.rate); CPU per connection ≤ HAProxy's: $(verdict "$(m cpuconn.gateway) <= $(m cpuconn.haproxy)").
- SSH handshake overhead < 2 %: $(verdict "${SSH_MEAN[gateway]} < 1.02 * ${SSH_MEAN[direct]}") on the mean ($(ssh_overhead gateway));
  $(ssh_resolution gateway).
- memory per idle connection ≤ HAProxy's: process RSS $(verdict "$RSS_G <= $RSS_H"), RSS + kernel $(verdict "$SH_G <= $SH_H").
<!-- bench/gateway.sh results: end -->
MD
)
publish_results gateway.sh "The gateway vs HAProxy and the direct path (issue 4)"
