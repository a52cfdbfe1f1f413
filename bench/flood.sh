#!/usr/bin/env bash
# Logins in a row, in a burst and under a flood of idle connections (issue
# 13, points 4 and 5): the time of `ssh host true` through the gateway and
# through HAProxy 2.6 (the anchor), on one pool of one LXC instance: LOGINS
# logins one after another with no flood; BURST logins started at the same
# moment; and LOGINS in a row with FLOOD idle TCP connections held open to
# the same front port (from 20 client addresses, each one the server closes
# reopened at once: test/integration/flood_client.py). Per path and
# condition: the median and p99 (nearest rank) of the logins that got in,
# and how many failed; and how many of the flood's connections the
# instance's sshd answered (its banner), which the gateway's wait for the
# client's first bytes keeps at 0.
#
# Usage: bench/flood.sh BUILD/apps/dspool/dspool [LOGINS] [FLOOD] [BURST]
#   LOGINS  logins per path in a row, and under the flood (default: 20)
#   FLOOD   idle connections held open (default: 2000)
#   BURST   logins at once (default: 30)
# Environment: DOCS (docs/benchmarks.md; "-" prints the results only).
# Run as root. Installs haproxy if missing. Writes the results between this
# script's markers in docs/benchmarks.md (appending the section the first
# time) and prints them.
set -euo pipefail
COMMAND_LINE="$0 $*"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
DSPOOL=$(realpath "$1")
LOGINS=${2:-20}
FLOOD=${3:-2000}
BURST=${4:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
DOCS=${DOCS:-$REPO/docs/benchmarks.md}
source "$REPO/test/integration/lib.sh"
source "$HERE/lib.sh"
require_root_and_lxc
[[ "$LOGINS" =~ ^[1-9][0-9]*$ ]] || fail "LOGINS must be a positive number, not '$LOGINS'"
[[ "$FLOOD" =~ ^[1-9][0-9]*$ ]] || fail "FLOOD must be a positive number, not '$FLOOD'"
[[ "$BURST" =~ ^[1-9][0-9]*$ ]] || fail "BURST must be a positive number, not '$BURST'"

ensure_haproxy

# The flood client holds FLOOD sockets, HAProxy twice as many, the gateway
# FLOOD (it connects nothing for them).
ulimit -n "$(ulimit -Hn)"
(( 3 * FLOOD + 3000 <= $(ulimit -Hn) )) \
  || fail "FLOOD=$FLOOD needs about $(( 3 * FLOOD + 3000 )) descriptors; the hard limit is $(ulimit -Hn)"

WORK=$(mktemp -d /tmp/dspool-bench-flood.XXXXXX)
DATA=$WORK/data
POOL=fld$RANDOM
POOL=${POOL:0:8}
SUBNET=$(free_subnet)
HA_PID=""
FLOOD_PID=""
bench_cleanup() {
  set +e
  [[ -n "$FLOOD_PID" ]] && kill "$FLOOD_PID" 2>/dev/null && wait "$FLOOD_PID" 2>/dev/null
  [[ -n "$HA_PID" ]] && kill "$HA_PID" 2>/dev/null && wait "$HA_PID" 2>/dev/null
  bench_teardown  # bench/lib.sh: the pool, then the server, containers, bridge, WORK
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK/share"
ssh-keygen -q -t ed25519 -N "" -C "bench admin" -f "$WORK/key"
start_server
GW=$(free_port)
HA=$(free_port)
[[ "$HA" != "$GW" ]] || HA=$(free_port)
ssh_pool_spec "$GW" 2 1024 >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null
wait_ready "$POOL" 1
ADDR=$(instance_addresses "$POOL")

# HAProxy: TCP mode to the same sshd, checks as often as the gateway's probe.
cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn $(( FLOOD + 1000 ))
defaults
    mode tcp
    timeout connect 5s
    timeout client 30m
    timeout server 30m
listen ssh
    bind 0.0.0.0:$HA
    server i0 $ADDR:22 check inter 5s
CFG
haproxy -c -q -f "$WORK/haproxy.cfg" || fail "haproxy rejects $WORK/haproxy.cfg"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HA_PID=$!
wait_listening "$HA" haproxy "$WORK/haproxy.log"

declare -A PORT_OF=([gateway]=$GW [haproxy]=$HA)
login() {  # port
  ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o LogLevel=ERROR -o ConnectTimeout=30 -p "$1" dsvmadmin@127.0.0.1 true
}
for path in gateway haproxy; do
  wait_until 60 "a login through $path" login "${PORT_OF[$path]}"
done

# R[key] holds each measure's result.
declare -A R
# logins PATH CONDITION: LOGINS logins in a row; R[PATH.CONDITION.*]: the
# median and p99 of those that got in (ms), and how many failed.
logins() {
  local times=() failed=0 i t0 t1
  for ((i = 0; i < LOGINS; i++)); do
    t0=$(date +%s%N)
    if login "${PORT_OF[$1]}" 2>>"$WORK/login.$1.$2.err"; then
      t1=$(date +%s%N)
      times+=("$(( (t1 - t0) / 1000 ))")
    else
      failed=$((failed + 1))
    fi
  done
  summarize "$1" "$2" "$failed" "$LOGINS" "${times[@]}"
}
# burst PATH: BURST logins started at once, each timed on its own.
burst() {
  local pids=() times=() failed=0 i
  for ((i = 0; i < BURST; i++)); do
    ( t0=$(date +%s%N)
      login "${PORT_OF[$1]}" 2>>"$WORK/login.$1.burst.err" || exit 1
      echo "$(( ($(date +%s%N) - t0) / 1000 ))" >"$WORK/burst.$1.$i" ) &
    pids+=($!)
  done
  for ((i = 0; i < BURST; i++)); do
    if wait "${pids[$i]}"; then times+=("$(cat "$WORK/burst.$1.$i")"); else failed=$((failed + 1)); fi
  done
  summarize "$1" burst "$failed" "$BURST" "${times[@]}"
}
# summarize PATH CONDITION FAILED OF TIMES_US...: R[PATH.CONDITION.*].
summarize() {
  local key=$1.$2 failed=$3 of=$4
  shift 4
  R[$key.failed]=$failed
  if (($# == 0)); then R[$key.p50]=–; R[$key.p99]=–; return; fi
  read -r "R[$key.p50]" "R[$key.p99]" < <(printf '%s\n' "$@" | sort -n | awk '{t[NR] = $1}
    END { p50 = int((NR + 1) / 2); p99 = int(0.99 * NR); if (p99 < 0.99 * NR) p99++
          printf "%.1f %.1f\n", t[p50] / 1000, t[p99] / 1000 }')
  echo "bench: ${key/./, }: median ${R[$key.p50]} ms, p99 ${R[$key.p99]} ms, $failed of $of failed" >&2
}
sources=$(seq -s, -f '127.0.0.%g' 2 21)
for path in gateway haproxy; do
  logins "$path" none
  burst "$path"
  /usr/bin/python3 "$REPO/test/integration/flood_client.py" "${PORT_OF[$path]}" "$FLOOD" "$sources" \
    "$WORK/flood.$path.ready" --reopen >"$WORK/flood.$path.out" 2>"$WORK/flood.$path.err" &
  FLOOD_PID=$!
  wait_until 120 "the flood on $path holds $FLOOD connections" test -s "$WORK/flood.$path.ready"
  logins "$path" flood
  kill -TERM "$FLOOD_PID"
  wait "$FLOOD_PID" || fail "the flood client failed: $(cat "$WORK/flood.$path.err")"
  FLOOD_PID=""
  read -r "R[$path.answered]" "R[$path.reopened]" < <(/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(s["answered"], s["closed_by_server"])' "$WORK/flood.$path.out")
  # What the flood left in sshd (HAProxy's, until LoginGraceTime) goes
  # before the next path is measured.
  wait_until 60 "sshd to be free of $path's flood" login "${PORT_OF[$path]}"
done

commit=$(build_commit "$DSPOOL")
ha_version=$(haproxy -v | awk 'NR == 1 {print $3}')
row() {  # path label
  echo "| $2 | ${R[$1.none.p50]} | ${R[$1.none.p99]} | ${R[$1.none.failed]} | ${R[$1.burst.p50]} | ${R[$1.burst.p99]} | ${R[$1.burst.failed]} | ${R[$1.flood.p50]} | ${R[$1.flood.p99]} | ${R[$1.flood.failed]} | ${R[$1.answered]} | ${R[$1.reopened]} |"
}
RESULTS=$(cat <<MD
<!-- bench/flood.sh results: begin (generated; the next run replaces this block) -->
    sudo $COMMAND_LINE

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r), load average
$LOAD_AT_START at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end; dspool $commit; HAProxy
$ha_version (TCP mode). One instance (2 vCPUs) whose sshd has \`MaxStartups 256:30:1024\` and
\`LoginGraceTime 30\`; the proxies on the host, reached at 127.0.0.1. Each path: $LOGINS logins
(\`ssh -p PORT dsvmadmin@127.0.0.1 true\`, with a key) one after another with no flood; $BURST
logins started at the same moment (*burst*); then $LOGINS in a row with $FLOOD idle
connections held open to the same port from 20 client addresses (each one the server closes
is reopened at once). Login times in ms (of the logins that got in; p99 by nearest rank);
*answered*: the flood's connections that an sshd greeted, over the run; *closed*: the
flood's connections the server side closed (and the client reopened).

| path | median | p99 | failed | median, burst | p99, burst | failed, burst | median, flood | p99, flood | failed, flood | answered | closed |
|---|---|---|---|---|---|---|---|---|---|---|---|
$(row gateway gateway)
$(row haproxy HAProxy)
<!-- bench/flood.sh results: end -->
MD
)
publish_results flood.sh "Logins in a row, in a burst, and under a flood of idle connections (issue 13, points 4 and 5)"
