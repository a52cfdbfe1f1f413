# Shared by the bench/*.sh scripts (after test/integration/lib.sh).

# write_results NAME TITLE RESULTS_FILE DOCS
# Replaces the block between "<!-- bench/NAME results: begin" and
# "<!-- bench/NAME results: end -->" in DOCS with RESULTS_FILE's text (which
# holds both markers), or appends it under "## TITLE" the first time.
write_results() {
  python3 - "$1" "$2" "$3" "$4" <<'PY'
import re, sys
name, title, results_file, docs = sys.argv[1:5]
results = open(results_file).read().rstrip("\n")
text = open(docs).read()
pattern = re.compile(r"<!-- bench/%s results: begin.*?<!-- bench/%s results: end -->" % (re.escape(name), re.escape(name)), re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: results, text)
else:
    text = text.rstrip("\n") + "\n\n## " + title + "\n\n" + results + "\n"
open(docs, "w").write(text)
PY
}

# publish_results NAME TITLE: prints $RESULTS and, unless DOCS is "-",
# writes it into DOCS (write_results), through a file in $WORK.
publish_results() {
  echo "$RESULTS"
  [[ "$DOCS" == - ]] && return 0
  printf '%s\n' "$RESULTS" >"$WORK/results.md"
  write_results "$1" "$2" "$WORK/results.md" "$DOCS"
  echo "bench: results written to $DOCS" >&2
}

# build_commit PATH: the commit a binary in a CMake build tree was built
# from, as its build recorded it (build_commit.txt, cmake/build_commit.cmake):
# "abc1234", with a remark if src/, apps/ or bench/ had uncommitted changes
# then, or "of unknown commit".
build_commit() {
  local d
  d=$(dirname "$(realpath "$1")")
  while [[ "$d" != / && ! -e "$d/CMakeCache.txt" ]]; do d=$(dirname "$d"); done
  cat "$d/build_commit.txt" 2>/dev/null || echo "of unknown commit"
}

# wait_listening PORT WHAT LOGFILE: until something listens on PORT (15 s);
# otherwise the log's tail and fail naming WHAT.
wait_listening() {
  for _ in $(seq 150); do ss -Htln "sport = :$1" | grep -q . && return 0; sleep 0.1; done
  tail -20 "$3" >&2 || true
  fail "$2 does not listen on port $1"
}

# to_us DURATION: wrk's "1.23ms" (us, ms, s, m) in microseconds; -1 if unknown.
to_us() {
  awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    printf "%.0f", (u == "us" ? n : u == "ms" ? n * 1e3 : u == "s" ? n * 1e6 : u == "m" ? n * 6e7 : -1) }'
}

# The end of a bench's EXIT trap: the pool deleted through the server, if it
# still runs, then lib.sh's cleanup (the server, leftover containers, the
# bridge, WORK).
bench_teardown() {
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    dsp pool delete "$POOL" >/dev/null 2>&1
    for _ in $(seq 60); do dsp pool show "$POOL" >/dev/null 2>&1 || break; sleep 0.5; done
  fi
  cleanup
}

log() { echo "bench: $*" >&2; }
# HAProxy (the anchor of the TCP benchmarks), from Debian if missing.
ensure_haproxy() {
  command -v haproxy >/dev/null && return 0
  log "installing haproxy"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
}
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }  # (): a ">" in $2 compares, not redirects
secret_file() {  # name: a fresh random hex secret in $SECRET/name (no newline)
  (umask 077; openssl rand -hex 24 | tr -d '\n' >"$SECRET/$1")
}

# echo_pool_up THREADS: the stage of bench/jupyter.sh and bench/ws_capacity.sh.
# Starts the dspool server (start_dspool [FLAGS]: with --gateway-threads
# THREADS) with bench/http_echo ($HTTP_ECHO, copied to the share) as every
# user's notebook server, makes pool $POOL of one instance (2 vCPUs) on
# $SUBNET with its Jupyter address on port $JP, adds $USER_NAME with a
# password in $SECRET/alice.pw and logs them in. Sets SERVER_PID, INSTANCE,
# GW (the gateway's base URL), COOKIE (the session cookie, "name=value")
# and BACKEND (http_echo's address:port on the pool's bridge); defines
# control PATH (a GET to the instance's agent).
# Needs: DSPOOL, WORK, DATA, SECRET (0700), POOL, SUBNET, USER_NAME, JP, HTTP_ECHO;
# POOL_MEMORY_MIB (the instance's memory, default 2048) if set.
echo_pool_up() {
  ECHO_POOL_THREADS=$1
  mkdir -p "$WORK/share/bench"
  chmod 711 "$WORK"
  install -m 755 "$HTTP_ECHO" "$WORK/share/bench/http_echo"
  ECHO_IN_INSTANCE=/datamnt/dsvmshare/bench/http_echo
  ssh-keygen -q -t ed25519 -N "" -C "bench admin" -f "$WORK/key"
  start_dspool() {  # extra server flags
    "$DSPOOL" server --data-dir "$DATA" --log-level info --gateway-threads "$ECHO_POOL_THREADS" "$@" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do dsp status >/dev/null 2>&1 && return 0; sleep 0.1; done
    tail -20 "$WORK/server.log"
    fail "server did not answer"
  }
  start_dspool --jupyter-program "$ECHO_IN_INSTANCE"

  cat >"$WORK/spec.json" <<JSON
  {"name": "$POOL", "instanceCount": 1,
   "size": {"vcpus": 2, "memoryMiB": ${POOL_MEMORY_MIB:-2048}},
   "network": {"subnet": "$SUBNET"},
   "share": {"type": "bind", "source": "$WORK/share"},
   "adminUser": {"name": "benchadm", "sshPublicKey": "$(cat "$WORK/key.pub")"},
   "jupyter": {"frontendPort": $JP, "cullIdleMinutes": 0}}
JSON
  dsp pool create -f "$WORK/spec.json" >/dev/null
  secret_file alice.pw
  dsp user add "$USER_NAME" --password-stdin <"$SECRET/alice.pw" >/dev/null
  wait_ready "$POOL" 1
  INSTANCE=$(first_instance "$POOL")
  GW=https://127.0.0.1:$JP
  wait_listening "$JP" "the gateway's Jupyter address" "$WORK/server.log"

  # Logs alice in at the gateway; the session cookie goes to $SECRET/jar.
  gateway_login() {
    curl -sk -o /dev/null -w '%{http_code}' -c "$SECRET/jar" --data-urlencode "username=$USER_NAME" \
         --data-urlencode "password@$SECRET/alice.pw" "$GW/hub/login"
  }
  code=$(gateway_login)
  [[ "$code" == 303 ]] || fail "login at the gateway: HTTP $code, not 303"
  COOKIE="dspool_session=$(awk '$6 == "dspool_session" {print $7}' "$SECRET/jar")"
  [[ "$COOKIE" != "dspool_session=" ]] || fail "no session cookie after the login"
  for _ in $(seq 900); do  # a failed start is tried again after 30 s
    code=$(curl -sk -o /dev/null -w '%{http_code}' -b "$SECRET/jar" "$GW/user/$USER_NAME/api/status")
    [[ "$code" == 200 ]] && break
    sleep 0.1
  done
  [[ "$code" == 200 ]] || { tail -20 "$WORK/server.log"; fail "alice's server (http_echo) did not answer through the gateway: HTTP $code"; }
  control() { agent_get "$INSTANCE" "$1"; }
  BACKEND=$(control /v1/jupyter/servers | python3 -c "
import json, sys
s = [s for s in json.load(sys.stdin)['servers'] if s['user'] == '$USER_NAME' and s['state'] == 'ready'][0]
print('%s:%d' % (s['address'], s['port']))")
  got=$(curl -s "http://$BACKEND/user/$USER_NAME/x")
  [[ "$got" == "http_echo: ok" ]] || fail "alice's server at $BACKEND is not http_echo: '$got'"
  log "backend: http_echo at $BACKEND (pool $POOL, instance $INSTANCE)"
}

# V[key] collects one value per round; median and range read them back.
# With 5 rounds the range (min–max) holds the true median with 94 %
# probability (1 − 2 × 2⁻⁵), whatever the distribution: it is the interval.
declare -A V
add() { V[$1]="${V[$1]:-} $2"; }
last() { awk '{print $NF}' <<<"${V[$1]}"; }
median() { tr ' ' '\n' <<<"${V[$1]}" | awk 'NF' | sort -g | awk -v f="${2:-%.2f}" '{x[NR] = $1}
  END {printf f, NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2}'; }
range() { tr ' ' '\n' <<<"${V[$1]}" | awk -v f="${2:-%.2f}" 'NF {if (n == 0 || $1 < lo) lo = $1; if (n == 0 || $1 > hi) hi = $1; n++}
  END {if (n > 1) printf " (" f "–" f ")", lo, hi}'; }
show() { echo "$(median "$1" "${2:-%.2f}")$(range "$1" "${2:-%.2f}")"; }  # median (min–max)
# median_ratio KEY_A KEY_B [FORMAT]: V[KEY_A]'s median over V[KEY_B]'s.
median_ratio() { calc "${3:-%.2f}" "$(median "$1") / $(median "$2")"; }
# rotated ROUND ITEM...: the items rotated by ROUND (round r runs them in this order).
rotated() { local r=$1 i; shift; for ((i = 0; i < $#; i++)); do echo -n "${@:$(( (i + r) % $# + 1 )):1} "; done; }

# A process's user + system CPU time (1/CLK_TCK s) and resident memory (KiB); 0 for no PID.
cpu_ticks() { [[ -z "$1" ]] && { echo 0; return; }; awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { [[ -z "$1" ]] && { echo 0; return; }; awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
