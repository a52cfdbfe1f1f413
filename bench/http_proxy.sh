#!/usr/bin/env bash
# bench/http_proxy.sh: ProxyServer (bench/http_proxy) against HAProxy, both
# in front of bench/http_echo, on 127.0.0.1 only. TLS with one self-signed
# certificate; wrk -t2 -c32, keep-alive, a small GET; ROUNDS alternating
# rounds of SECS seconds each; prints req/s and p99 per run and the ratios.
#
#   bench/http_proxy.sh BUILD_DIR [OLD_HTTP_PROXY_BINARY]
#
# With a second argument, that binary (bench/http_proxy built from another
# revision) is measured too, as "old". Env: SECS (10), ROUNDS (3),
# THREADS (2), WRK_THREADS (2), WRK_CONNS (32), DOCS (docs/benchmarks.md,
# where the results block goes; "-" prints it only). Needs wrk, haproxy,
# openssl.
#
# Two measures: "saturated" (wrk as fast as it can, a closed loop: the
# faster proxy also gets more load, so its p99 is taken at a higher req/s)
# and "paced" (each connection waits 1 ms between requests, wrk's delay():
# the same offered load through each, well under their capacity, so the
# p99s compare like for like).
set -euo pipefail
COMMAND_LINE="$0 $*"
for v in WRK_CONNS WRK_THREADS THREADS ROUNDS SECS; do
  [[ -n "${!v:-}" ]] && COMMAND_LINE="$v=${!v} $COMMAND_LINE"
done
BUILD=${1:?usage: bench/http_proxy.sh BUILD_DIR [OLD_HTTP_PROXY_BINARY]}
OLD=${2:-}
SECS=${SECS:-10} ROUNDS=${ROUNDS:-3} THREADS=${THREADS:-2} WRK_THREADS=${WRK_THREADS:-2} WRK_CONNS=${WRK_CONNS:-32}
for tool in wrk haproxy openssl; do command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }; done

HERE=$(cd "$(dirname "$0")" && pwd)
DOCS=${DOCS:-$(realpath "$HERE/../docs/benchmarks.md")}
source "$HERE/../test/integration/lib.sh"  # free_port, fail
source "$HERE/lib.sh"                      # wait_listening, to_us, build_commit, publish_results
WORK=$(mktemp -d)
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap stop_all EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=bench -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
  >/dev/null 2>&1
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/haproxy.pem"

UP=$(free_port)
"$BUILD/bench/http_echo" --ip=127.0.0.1 --port="$UP" >"$WORK/echo.log" 2>&1 & PIDS+=($!)
wait_listening "$UP" http_echo "$WORK/echo.log"

declare -A PORT
PORT[new]=$(free_port)
"$BUILD/bench/http_proxy" --port="${PORT[new]}" --upstream-port="$UP" --threads="$THREADS" \
  --cert="$WORK/cert.pem" --key="$WORK/key.pem" >"$WORK/new.log" 2>&1 & PIDS+=($!)
wait_listening "${PORT[new]}" "the proxy" "$WORK/new.log"
NAMES=(new haproxy)
if [[ -n "$OLD" ]]; then
  PORT[old]=$(free_port)
  "$OLD" --port="${PORT[old]}" --upstream-port="$UP" --threads="$THREADS" \
    --cert="$WORK/cert.pem" --key="$WORK/key.pem" >"$WORK/old.log" 2>&1 & PIDS+=($!)
  wait_listening "${PORT[old]}" "the old proxy" "$WORK/old.log"
  NAMES=(new old haproxy)
fi
PORT[haproxy]=$(free_port)
cat >"$WORK/haproxy.cfg" <<CFG
global
    nbthread $THREADS
    maxconn 4096
defaults
    mode http
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend bench
    bind 127.0.0.1:${PORT[haproxy]} ssl crt $WORK/haproxy.pem
    default_backend echo
backend echo
    server echo 127.0.0.1:$UP
CFG
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 & PIDS+=($!)
wait_listening "${PORT[haproxy]}" haproxy "$WORK/haproxy.log"

declare -A RPS P99
run() {  # mode name round
  local extra=()
  [[ $1 == paced ]] && extra=(-s "$WORK/pace.lua")
  out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${SECS}s" --latency "${extra[@]}" "https://127.0.0.1:${PORT[$2]}/bench" 2>&1)
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  errs=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
              END {print n + 0}' <<<"$out")
  printf '%-9s round %d  %-8s %10s req/s  p99 %6s us  errors %s\n' "$1" "$3" "$2" "$rps" "$p99" "$errs"
  RPS[$1.$2]+="$rps "; P99[$1.$2]+="$p99 "
}
echo 'function delay() return 1 end' >"$WORK/pace.lua"
for mode in saturated paced; do
  for round in $(seq "$ROUNDS"); do
    order=("${NAMES[@]}")
    (( round % 2 == 0 )) && order=($(printf '%s\n' "${NAMES[@]}" | tac))
    for name in "${order[@]}"; do run "$mode" "$name" "$round"; done
  done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rows() {  # mode: a table row per proxy, with its ratios to HAProxy
  local name r p rh ph
  rh=$(median "${RPS[$1.haproxy]}"); ph=$(median "${P99[$1.haproxy]}")
  for name in "${NAMES[@]}"; do
    r=$(median "${RPS[$1.$name]}"); p=$(median "${P99[$1.$name]}")
    awk -v m="$1" -v n="$name" -v r="$r" -v p="$p" -v rh="$rh" -v ph="$ph" 'BEGIN {
      label = n == "new" ? "ProxyServer" : n == "old" ? "ProxyServer (old)" : "HAProxy"
      printf "| %s | %s | %.0f | %d µs | %s |\n", m, label, r, p,
             n == "haproxy" ? "–" : sprintf("%.2f req/s, %.2f p99", r / rh, p / ph) }'
  done
}
RESULTS=$(cat <<MD
<!-- bench/http_proxy.sh results: begin (generated; the next run replaces this block) -->
    $COMMAND_LINE

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r); ProxyServer from
\`bench/http_proxy\` (dspool $(build_commit "$BUILD/bench/http_proxy"), $THREADS threads) vs HAProxy
$(haproxy -v | awk 'NR == 1 {print $3}') (http mode, nbthread $THREADS), both TLS (one self-signed
certificate) in front of \`bench/http_echo\`, all on 127.0.0.1; wrk -t$WRK_THREADS -c$WRK_CONNS,
keep-alive, GET /bench, ${SECS} s per run; medians of $ROUNDS rounds in alternating order.
*saturated*: wrk as fast as it can (the faster proxy also gets more load); *paced*: 1 ms
between a connection's requests (the same offered load through each).${OLD:+ "old": \`$OLD\`,
dspool $(build_commit "$OLD").}

| load | proxy | req/s | p99 | vs HAProxy |
|---|---|---|---|---|
$(rows saturated)
$(rows paced)
<!-- bench/http_proxy.sh results: end -->
MD
)
publish_results http_proxy.sh "The HTTP proxy alone vs HAProxy, on loopback"
