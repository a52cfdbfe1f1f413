#!/usr/bin/env bash
# dspool's Jupyter address side by side with its anchors, in one run, on one
# pool of one LXC instance (2 vCPUs):
#   1. HTTP through (a) the dspool gateway's Jupyter port (TLS, session
#      cookie checked, token added), (b) HAProxy 2.6 in http mode (TLS with
#      the same certificate, a backend per user chosen by the path),
#      (c) Debian's configurable-http-proxy 4.5.3 and (d) a current one
#      from npm, pinned (CHP_VERSION), each with a route per user, and, for
#      reference, (e) one user's backend directly (plain HTTP on the pool's
#      bridge). USERS users, each logged in with their own session cookie
#      and their own server; every request is the next user's. Requests/s
#      at saturation (wrk, a closed loop), then latency at the same offered
#      loads through each (bench/http_load's open loop, LEVELS % of
#      HAProxy's saturated rate), with each proxy's CPU per request;
#   2. WebSocket echo round trips (bench/ws_echo: WS_COUNT small messages,
#      one after the other; median and p99) through the same paths;
#   3. login to a kernel that answers (login POST → the user's server
#      answers → POST api/kernels → execute_request over the kernel's
#      WebSocket → execute_reply): dspool (Debian's Jupyter Notebook in the
#      instance) vs JupyterHub 3.0 (Debian's, PAMAuthenticator with host
#      users made for the run, LocalProcessSpawner with jupyterhub-singleuser,
#      TLS on its proxy with the same certificate), all on loopback: one
#      user at a time, then CONCURRENT users logging in at once.
# The backend of 1 and 2 is bench/http_echo, run by the instance's agent as
# each user's notebook server: the server runs with --jupyter-program
# pointing at it (copied to the pool's share), so the gateway routes to it
# exactly as to a notebook, and HAProxy and CHP are pointed at the same
# addresses and ports. Measure 3 needs the real Notebook, so the server is
# then restarted on the same --data-dir without the flag: the pool, its
# instance and its users survive a restart, and the first login after it
# replaces a user's http_echo by jupyter-notebook (a new token), in an
# untimed warm-up round. One server process at a time keeps the pool, the
# instance and the machine the same for both phases.
#
# Usage: bench/jupyter.sh BUILD/apps/dspool/dspool [THREADS]
#   THREADS  --gateway-threads (the gateway's web proxy threads) and
#            HAProxy's nbthread (default: 2)
# Environment: ROUNDS (5: rounds of measures 1 and 2, the order of the
#   paths rotated each round; figures are medians with the range over
#   rounds), SECS (10: each HTTP run), WRK_THREADS (2), WRK_CONNS (32),
#   USERS (100), LEVELS ("25 50 75"), OPEN_CONNS (64), CHP_VERSION (5.3.0;
#   installed with npm into CHP_DIR, default /var/cache/dspool-bench/chp-VERSION),
#   WS_COUNT (5000 round trips per run), KERNEL_ROUNDS (5, plus one untimed
#   warm-up each), CONCURRENT (20), CONC_ROUNDS (3), HTTP_ECHO, WS_ECHO and
#   HTTP_LOAD (default: BUILD/bench/, next to the dspool binary), DOCS
#   (docs/benchmarks.md; "-" prints the results only).
# Run as root. Installs wrk, haproxy, npm, jupyterhub, configurable-http-proxy,
# Jupyter Notebook and the Python modules it needs if missing. Creates host
# users for JupyterHub (removed on exit). Secrets (passwords, session
# cookies, CHP's and the hub's tokens) stay in 0600 files under the run's
# directory and in environment variables, never in argv. Writes the results
# between this script's markers in docs/benchmarks.md (appending the section
# the first time) and prints them.
set -euo pipefail
COMMAND_LINE="$0 $*"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
for v in HTTP_ECHO WS_ECHO HTTP_LOAD CONC_ROUNDS CONCURRENT KERNEL_ROUNDS WS_COUNT CHP_VERSION OPEN_CONNS LEVELS USERS \
         WRK_CONNS WRK_THREADS SECS ROUNDS; do
  [[ -n "${!v:-}" ]] && COMMAND_LINE="$v=\"${!v}\" $COMMAND_LINE"
done
DSPOOL=$(realpath "$1")
THREADS=${2:-2}
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-10}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WS_COUNT=${WS_COUNT:-5000}
KERNEL_ROUNDS=${KERNEL_ROUNDS:-5}
USERS=${USERS:-100}
LEVELS=${LEVELS:-25 50 75}
OPEN_CONNS=${OPEN_CONNS:-64}
CHP_VERSION=${CHP_VERSION:-5.3.0}
CHP_DIR=${CHP_DIR:-/var/cache/dspool-bench/chp-$CHP_VERSION}
CONCURRENT=${CONCURRENT:-20}
CONC_ROUNDS=${CONC_ROUNDS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
HTTP_ECHO=$(realpath "${HTTP_ECHO:-$(dirname "$DSPOOL")/../../bench/http_echo}")
WS_ECHO=$(realpath "${WS_ECHO:-$(dirname "$DSPOOL")/../../bench/ws_echo}")
HTTP_LOAD=$(realpath "${HTTP_LOAD:-$(dirname "$DSPOOL")/../../bench/http_load}")
DOCS=${DOCS:-$REPO/docs/benchmarks.md}
source "$REPO/test/integration/lib.sh"
source "$HERE/lib.sh"
require_root_and_lxc
for tool in "$HTTP_ECHO" "$WS_ECHO" "$HTTP_LOAD"; do
  [[ -x "$tool" ]] || fail "no $tool: build it (cmake --build BUILD --target http_echo ws_echo http_load) or set HTTP_ECHO / WS_ECHO / HTTP_LOAD"
done

# The anchors and Jupyter, from Debian. Before the pool exists: an
# instance's root file system is the host's.
need=()
command -v npm >/dev/null || need+=(npm)
for p in wrk haproxy jupyterhub node-configurable-http-proxy jupyter-notebook python3-ipykernel python3-websocket \
         python3-requests; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  echo "bench: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
ulimit -n "$(ulimit -Hn)"
# The current configurable-http-proxy, pinned, once per version.
if [[ ! -x "$CHP_DIR/node_modules/.bin/configurable-http-proxy" ]]; then
  echo "bench: installing configurable-http-proxy $CHP_VERSION from npm into $CHP_DIR" >&2
  mkdir -p "$CHP_DIR"
  npm install --prefix "$CHP_DIR" --no-audit --no-fund --loglevel=error "configurable-http-proxy@$CHP_VERSION" >/dev/null \
    || { rm -rf "$CHP_DIR"; echo "bench: npm install configurable-http-proxy@$CHP_VERSION failed" >&2; exit 1; }
fi
CHP_NPM=$CHP_DIR/node_modules/.bin/configurable-http-proxy

WORK=$(mktemp -d /tmp/dspool-bench-jp.XXXXXX)
DATA=$WORK/data
SECRET=$WORK/secret  # 0700: passwords, cookies, tokens
mkdir -m 700 "$SECRET"
POOL=jpb$RANDOM
POOL=${POOL:0:8}
SUBNET=$(free_subnet)
USER_NAME=alice
HUB_PREFIX=dspjh$RANDOM
HUB_USER=${HUB_PREFIX}a
HUB_USERS_MADE=()
HA_PID=""
CHP_PID=""
CHPN_PID=""
HUB_PID=""

bench_cleanup() {
  set +e
  local pid u
  for pid in "$HUB_PID" "$CHPN_PID" "$CHP_PID" "$HA_PID"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  # The hub stops its single-user servers and its proxy on SIGTERM; what a
  # killed hub left runs as the hub users or under its pid file.
  [[ -f "$WORK/hub/proxy.pid" ]] && kill "$(cat "$WORK/hub/proxy.pid")" 2>/dev/null
  for u in "${HUB_USERS_MADE[@]}"; do
    for pid in $(pgrep -u "$u"); do kill "$pid" 2>/dev/null; done
  done
  for u in "${HUB_USERS_MADE[@]}"; do
    for _ in $(seq 50); do pgrep -u "$u" >/dev/null || break; sleep 0.1; done
    for pid in $(pgrep -u "$u"); do kill -9 "$pid" 2>/dev/null; done
  done
  ((${#HUB_USERS_MADE[@]})) && sleep 0.2
  for u in "${HUB_USERS_MADE[@]}"; do
    userdel -r "$u" >/dev/null 2>&1 || echo "bench: could not remove the host user $u" >&2
  done
  bench_teardown  # bench/lib.sh: the pool, then the server, containers, bridge, WORK
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM


read -r JP HA_PORT CHP_PORT CHP_API CHPN_PORT CHPN_API HUB_PUBLIC HUB_PORT HUB_API \
  <<<"$(for _ in $(seq 9); do free_port; done | sort -u | xargs)"
[[ -n "$HUB_API" ]] || fail "could not find 9 distinct free ports"

# ---- the dspool server, the pool, alice (bench/lib.sh) ----
POOL_MEMORY_MIB=$(( 4096 + 200 * CONCURRENT ))  # CONCURRENT notebook servers and kernels at once in measure 3
echo_pool_up "$THREADS"

# ---- USERS more users, each logged in with their own server ----
# $SECRET/targets: "PATH COOKIE" per user (bench/http_load's --targets);
# $WORK/backends: "USER ADDRESS:PORT" of each user's http_echo.
secret_file users.pw
(umask 077; : >"$SECRET/targets")
USER_LIST=$(seq -f "u%03g" "$USERS")
for u in $USER_LIST; do dsp user add "$u" --password-stdin <"$SECRET/users.pw" >/dev/null; done
for u in $USER_LIST; do
  code=$(curl -sk -o /dev/null -w '%{http_code}' -c "$SECRET/jar.$u" --data-urlencode "username=$u" \
         --data-urlencode "password@$SECRET/users.pw" "$GW/hub/login")
  [[ "$code" == 303 ]] || fail "login of $u at the gateway: HTTP $code, not 303"
  echo "/user/$u/api/status dspool_session=$(awk '$6 == "dspool_session" {print $7}' "$SECRET/jar.$u")" >>"$SECRET/targets"
done
for u in $USER_LIST; do
  for _ in $(seq 600); do
    code=$(curl -sk -o /dev/null -w '%{http_code}' -b "$SECRET/jar.$u" "$GW/user/$u/api/status")
    [[ "$code" == 200 ]] && break
    sleep 0.1
  done
  [[ "$code" == 200 ]] || fail "$u's server (http_echo) did not answer through the gateway: HTTP $code"
done
control /v1/jupyter/servers | python3 -c "
import json, sys
for s in json.load(sys.stdin)['servers']:
    if s['state'] == 'ready' and s['user'].startswith('u'):
        print('%s %s:%d' % (s['user'], s['address'], s['port']))" | sort >"$WORK/backends"
[[ $(wc -l <"$WORK/backends") == "$USERS" ]] || fail "$(wc -l <"$WORK/backends") of $USERS users' servers are ready"
FIRST_BACKEND=$(awk 'NR == 1 {print $2}' "$WORK/backends")
(umask 077; head -1 "$SECRET/targets" >"$SECRET/targets.direct")
log "$USERS users logged in, each with their own http_echo"

# ---- HAProxy: http mode, TLS with the pool's certificate, a backend per user ----
(umask 077; cat "$DATA/pools/$POOL/jupyter.crt" "$DATA/pools/$POOL/jupyter.key" >"$SECRET/haproxy.pem")
{
  cat <<CFG
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
frontend jupyter
    bind 127.0.0.1:$HA_PORT ssl crt $SECRET/haproxy.pem
    use_backend %[path,field(3,/)]
    default_backend notebook
backend notebook
    server nb $BACKEND
CFG
  while read -r u addr; do printf 'backend %s\n    server nb %s\n' "$u" "$addr"; done <"$WORK/backends"
} >"$WORK/haproxy.cfg"
haproxy -c -q -f "$WORK/haproxy.cfg" || fail "haproxy rejects $WORK/haproxy.cfg"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HA_PID=$!
wait_listening "$HA_PORT" haproxy "$WORK/haproxy.log"

# ---- configurable-http-proxy, Debian's and npm's: their token in their environment only ----
secret_file chp.token
(umask 077; printf 'Authorization: token %s\n' "$(cat "$SECRET/chp.token")" >"$SECRET/chp.auth")
start_chp() {  # PROGRAM PORT API_PORT LOG: prints its pid once its routes are in
  CONFIGPROXY_AUTH_TOKEN=$(cat "$SECRET/chp.token") NODE_PATH=/usr/share/nodejs \
    "$1" --ip 127.0.0.1 --port "$2" --api-ip 127.0.0.1 --api-port "$3" \
    --ssl-key "$DATA/pools/$POOL/jupyter.key" --ssl-cert "$DATA/pools/$POOL/jupyter.crt" --log-level warn \
    >"$4" 2>&1 &
  local pid=$! code u addr
  wait_listening "$3" "$1's API" "$4"
  while read -r u addr; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "@$SECRET/chp.auth" -X POST -d "{\"target\": \"http://$addr\"}" \
           "http://127.0.0.1:$3/api/routes/user/$u")
    [[ "$code" == 201 ]] || fail "adding $1's route /user/$u: HTTP $code"
  done < <(echo "$USER_NAME $BACKEND"; cat "$WORK/backends")
  echo "$pid"
}
CHP_PID=$(start_chp /usr/bin/configurable-http-proxy "$CHP_PORT" "$CHP_API" "$WORK/chp.log")
CHPN_PID=$(start_chp "$CHP_NPM" "$CHPN_PORT" "$CHPN_API" "$WORK/chpn.log")

PATHS=(gateway haproxy chp chpnpm direct)
declare -A BASE_OF=([gateway]=$GW [haproxy]=https://127.0.0.1:$HA_PORT [chp]=https://127.0.0.1:$CHP_PORT
                    [chpnpm]=https://127.0.0.1:$CHPN_PORT [direct]=http://$FIRST_BACKEND)
declare -A PID_OF=([gateway]=$(gateway_pid) [haproxy]=$HA_PID [chp]=$CHP_PID [chpnpm]=$CHPN_PID [direct]="")
declare -A LABEL_OF=([gateway]="dspool gateway" [haproxy]=HAProxy [chp]="configurable-http-proxy (Debian)"
                     [chpnpm]="configurable-http-proxy (npm)" [direct]="direct (plain HTTP, reference)")
declare -A TARGETS_OF=([gateway]=$SECRET/targets [haproxy]=$SECRET/targets [chp]=$SECRET/targets
                       [chpnpm]=$SECRET/targets [direct]=$SECRET/targets.direct)
for path in "${PATHS[@]}"; do
  while read -r target cookie; do
    got=$(curl -sk -H "@/dev/stdin" "${BASE_OF[$path]}${target%api/status}x" <<<"Cookie: $cookie")
    [[ "$got" == "http_echo: ok" ]] || fail "$path does not reach http_echo at $target: '$got'"
  done < <(sed -n '1p;$p' "${TARGETS_OF[$path]}")
done

# ---- helpers (add, last, median, range, show: bench/lib.sh) ----
# Stops the users' servers (and so their kernels) so the next run starts cold.
stop_dspool_servers() {  # users...
  local u
  for u in "$@"; do dsp session stop "$u" >/dev/null 2>&1 || true; done
  for _ in $(seq 200); do
    control /v1/jupyter/servers | python3 -c "
import json, sys
users = set(sys.argv[1:])
sys.exit(any(s['user'] in users and s['state'] != 'exited' for s in json.load(sys.stdin)['servers']))" "$@" && return 0
    sleep 0.1
  done
  fail "the notebook servers of $* did not stop"
}
# Round r runs the paths in PATHS' order rotated by r.
paths_for() { rotated "$1" "${PATHS[@]}"; }
HZ=$(getconf CLK_TCK)

# wrk takes every request from the targets file (its name in the
# environment, the cookies in the file, not in argv): each thread starts
# at another line and takes the next one for each request.
cat >"$WORK/targets.lua" <<'LUA'
local lines = {}
for line in io.lines(os.getenv("WRK_TARGETS")) do lines[#lines + 1] = line end
local threads = 0
function setup(thread) thread:set("first", threads * 7); threads = threads + 1 end
-- In init, not when the script loads: only then has wrk.headers its Host.
function init(args)
  requests = {}
  for _, line in ipairs(lines) do
    local path, cookie = line:match("^(%S+) (.*)$")
    requests[#requests + 1] = wrk.format("GET", path, {["Cookie"] = cookie})
  end
  i = first or 0
end
function request() i = i % #requests + 1; return requests[i] end
LUA

# ---- 1. HTTP: requests/s at saturation, then latency at equal offered loads ----
wrk_run() {  # path round
  local path=$1 out c0 c1 rps errors
  c0=$(cpu_ticks "${PID_OF[$path]}")
  out=$(WRK_TARGETS=${TARGETS_OF[$path]} wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${SECS}s" -s "$WORK/targets.lua" \
        "${BASE_OF[$path]}/" 2>&1) || fail "wrk through $path failed: $out"
  c1=$(cpu_ticks "${PID_OF[$path]}")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
                END {print n + 0}' <<<"$out")
  [[ -n "$rps" ]] || fail "cannot read wrk's output through $path: $out"
  add "rps.$path" "$rps"; add "err.$path" "$errors"
  add "cpureq.$path" "$(calc %.1f "1e6 * ($c1 - $c0) / $HZ / ($rps * $SECS)")"
  log "wrk $path, round $2: $rps req/s, errors $errors, $(last "cpureq.$path") µs of proxy CPU per request"
}
for round in $(seq "$ROUNDS"); do
  for path in $(paths_for "$round"); do sleep 1; wrk_run "$path" "$round"; done
  add ratio.rps.haproxy "$(calc %.2f "$(last rps.gateway) / $(last rps.haproxy)")"
  add ratio.rps.chp "$(calc %.1f "$(last rps.gateway) / $(last rps.chp)")"
  add ratio.rps.chpnpm "$(calc %.1f "$(last rps.gateway) / $(last rps.chpnpm)")"
done
HA_SAT=$(median rps.haproxy %.0f)
RATES=()
for pct in $LEVELS; do RATES+=("$(( HA_SAT * pct / 100 ))"); done
# A path runs a level only below 80 % of its own saturated rate: past it the
# queue grows for the whole run, which says no more than requests/s does.
runs_at() { (( $(calc %d "$2 < 0.8 * $(median "rps.$1")") )); }
open_run() {  # path rate
  local out c0 c1 answered
  c0=$(cpu_ticks "${PID_OF[$1]}")
  out=$("$HTTP_LOAD" open "${BASE_OF[$1]}/" --rate="$2" --seconds="$SECS" --conns="$OPEN_CONNS" \
        --targets="${TARGETS_OF[$1]}") || true
  c1=$(cpu_ticks "${PID_OF[$1]}")
  [[ "$out" == open* ]] || fail "http_load through $1 at $2 req/s: '$out'"
  answered=$(sed 's/.* answered=\([0-9]*\).*/\1/' <<<"$out")
  for f in p50_us p99_us errors late; do add "open.$f.$1.$2" "$(sed "s/.* $f=\([0-9]*\).*/\1/" <<<"$out")"; done
  add "open.cpu.$1.$2" "$(calc %.1f "1e6 * ($c1 - $c0) / $HZ / ($answered + 1)")"
  log "open loop, $1 at $2 req/s: $out"
}
for round in $(seq "$ROUNDS"); do
  for rate in "${RATES[@]}"; do
    for path in $(paths_for "$round"); do runs_at "$path" "$rate" && open_run "$path" "$rate"; done
  done
done

# ---- 2. WebSocket echo ----
ws_run() {  # path round
  local path=$1 url out
  url=${BASE_OF[$path]/#https:/wss:}
  url=${url/#http:/ws:}/user/$USER_NAME/api/kernels/bench/channels
  out=$(WS_ECHO_HEADERS="Cookie: $COOKIE" "$WS_ECHO" "$url" "$WS_COUNT" 2>&1) || fail "ws_echo through $path: $out"
  add "wsmed.$path" "$(sed -n 's/.* median_us=\([0-9]*\).*/\1/p' <<<"$out")"
  add "wsp99.$path" "$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$out")"
  log "websocket $path, round $2: $out"
}
for round in $(seq "$ROUNDS"); do
  for path in $(paths_for "$round"); do ws_run "$path" "$round"; done
done

# The proxies of phase 1 are done; stop them so phase 2 runs on a quiet
# machine, and the users' http_echo servers, so that their next login starts
# a notebook.
for pid in "$CHPN_PID" "$CHP_PID" "$HA_PID"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
CHPN_PID=""; CHP_PID=""; HA_PID=""
stop_dspool_servers "$USER_NAME" $USER_LIST

# ---- 3. login to a kernel that answers ----
# The dspool server again, with the default notebook program.
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true
start_dspool
wait_ready "$POOL" 1
wait_listening "$JP" "the gateway's Jupyter address (after the restart)" "$WORK/server.log"

# JupyterHub: host users with a password for PAM (HUB_USER for the runs one
# at a time, CONCURRENT more for the runs at once), the hub's service token
# read from a 0600 file by its configuration, TLS with the same certificate.
secret_file hub.pw
HUB_CONC=$(seq -f "${HUB_PREFIX}c%02g" "$CONCURRENT")
for u in "$HUB_USER" $HUB_CONC; do
  useradd -m -s /bin/bash "$u"
  HUB_USERS_MADE+=("$u")
  printf '%s:%s\n' "$u" "$(cat "$SECRET/hub.pw")" | chpasswd
done
# dspool: CONCURRENT more users for the runs at once.
DSP_CONC=$(seq -f "c%02g" "$CONCURRENT")
for u in $DSP_CONC; do dsp user add "$u" --password-stdin <"$SECRET/users.pw" >/dev/null; done
# The users' files for login_kernel.py: "USER PASSWORD" per line.
(umask 077
 echo "$USER_NAME $(cat "$SECRET/alice.pw")" >"$SECRET/one.dspool"
 echo "$HUB_USER $(cat "$SECRET/hub.pw")" >"$SECRET/one.hub"
 for u in $DSP_CONC; do echo "$u $(cat "$SECRET/users.pw")"; done >"$SECRET/conc.dspool"
 for u in $HUB_CONC; do echo "$u $(cat "$SECRET/hub.pw")"; done >"$SECRET/conc.hub")
secret_file hub.token
(umask 077; printf 'Authorization: token %s\n' "$(cat "$SECRET/hub.token")" >"$SECRET/hub.auth")
mkdir -m 700 "$WORK/hub"
cat >"$WORK/hub/jupyterhub_config.py" <<PY
# bench/jupyter.sh: a benchmark-only hub on loopback.
c = get_config()  # noqa
c.JupyterHub.bind_url = 'https://127.0.0.1:$HUB_PUBLIC'
c.JupyterHub.ssl_cert = '$DATA/pools/$POOL/jupyter.crt'
c.JupyterHub.ssl_key = '$DATA/pools/$POOL/jupyter.key'
c.JupyterHub.hub_ip = '127.0.0.1'
c.JupyterHub.hub_port = $HUB_PORT
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:$HUB_API'
c.ConfigurableHTTPProxy.pid_file = '$WORK/hub/proxy.pid'
c.JupyterHub.db_url = 'sqlite:///$WORK/hub/jupyterhub.sqlite'
c.JupyterHub.cookie_secret_file = '$WORK/hub/jupyterhub_cookie_secret'
c.JupyterHub.authenticator_class = 'jupyterhub.auth.PAMAuthenticator'
c.Authenticator.allowed_users = set('$HUB_USER $(echo $HUB_CONC)'.split())
c.JupyterHub.spawner_class = 'jupyterhub.spawner.LocalProcessSpawner'
c.Spawner.cmd = ['/usr/bin/jupyterhub-singleuser']
c.Spawner.environment = {'JUPYTERHUB_SINGLEUSER_APP': 'notebook.notebookapp.NotebookApp'}
c.Spawner.default_url = '/tree'
c.Spawner.notebook_dir = '~'
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 30
c.JupyterHub.services = [{'name': 'bench', 'api_token': open('$SECRET/hub.token').read().strip()}]
c.JupyterHub.load_roles = [{'name': 'bench-role', 'services': ['bench'],
                            'scopes': ['admin:users', 'admin:servers', 'access:servers']}]
PY
(cd "$WORK/hub" && PATH=/usr/bin:/bin:/usr/sbin:/sbin NODE_PATH=/usr/share/nodejs exec /usr/bin/jupyterhub \
   -f "$WORK/hub/jupyterhub_config.py" >"$WORK/hub/hub.log" 2>&1) &
HUB_PID=$!
for _ in $(seq 300); do
  [[ "$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$HUB_PUBLIC/hub/api")" == 200 ]] && break
  kill -0 "$HUB_PID" 2>/dev/null || { tail -30 "$WORK/hub/hub.log"; fail "jupyterhub exited"; }
  sleep 0.1
done
[[ "$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$HUB_PUBLIC/hub/api")" == 200 ]] \
  || { tail -30 "$WORK/hub/hub.log"; fail "jupyterhub does not answer on $HUB_PUBLIC"; }

# Login-to-kernel runs, as a browser and the notebook page would do them:
# every user of the file named by LK_USERS ("USER PASSWORD" lines) at once,
# one thread each, released together once all are ready; prints a line
# "USER login=S server=S kernel=S total=S" per user (seconds since their
# login POST), and exits non-zero if any failed.
cat >"$WORK/login_kernel.py" <<'PY'
import json, os, sys, threading, time, uuid, warnings
import requests, websocket
warnings.filterwarnings("ignore")
kind, base = sys.argv[1:3]
users = [line.split(" ", 1) for line in open(os.environ["LK_USERS"]).read().splitlines() if line]

def run(user, password, start, out):
    s = requests.Session()
    s.verify = False
    s.trust_env = False  # REQUESTS_CA_BUNDLE and proxies from the environment would override verify
    if kind == "hub":
        s.get(base + "/hub/login")  # the login page: its _xsrf cookie, before the clock starts
    start.wait()
    t0 = time.monotonic()
    form = {"username": user, "password": password}
    if kind == "hub":
        form.update({"_xsrf": c.value for c in s.cookies if c.name == "_xsrf"})
    r = s.post(base + "/hub/login" + ("?next=" if kind == "hub" else ""), data=form, allow_redirects=False)
    if r.status_code not in (302, 303):
        raise RuntimeError(f"login: HTTP {r.status_code}")
    t_login = time.monotonic()
    deadline = t0 + 180
    headers = {}
    if kind == "hub":
        # As the browser: /hub/spawn, the spawn-pending page, the single-user
        # server's OAuth round trip, until its page answers.
        r = s.get(base + "/hub/spawn")
        while not (r.url.startswith(f"{base}/user/{user}/") and r.status_code == 200):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {r.status_code} {r.url}")
            time.sleep(0.1)
            r = s.get(f"{base}/user/{user}/tree")
        xsrf = sorted((not c.path.startswith(f"/user/{user}"), c.value) for c in s.cookies if c.name == "_xsrf")
        headers = {"X-XSRFToken": xsrf[0][1] if xsrf else ""}
    else:
        # The gateway started the server at the login; its API answers once it is up.
        while s.get(f"{base}/user/{user}/api/status").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
    t_server = time.monotonic()
    r = s.post(f"{base}/user/{user}/api/kernels", json={"name": "python3"}, headers=headers)
    if r.status_code not in (200, 201):
        raise RuntimeError(f"POST api/kernels: HTTP {r.status_code} {r.text[:200]}")
    kernel = r.json()["id"]
    t_kernel = time.monotonic()
    cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies
                       if c.path in ("/", f"/user/{user}/", f"/user/{user}"))
    ws = websocket.create_connection(base.replace("https://", "wss://") + f"/user/{user}/api/kernels/{kernel}/channels",
                                     sslopt={"cert_reqs": 0, "check_hostname": False},
                                     header=[f"Cookie: {cookie}"], timeout=180)
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "username": user, "session": uuid.uuid4().hex, "msg_type": "execute_request",
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": "6 * 7", "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
        "buffers": []}))
    while True:
        m = json.loads(ws.recv())
        if m.get("parent_header", {}).get("msg_id") == msg_id and m["msg_type"] == "execute_reply":
            break
    t_end = time.monotonic()
    ws.close()
    if m["content"].get("status") != "ok":
        raise RuntimeError(f"the kernel answered {m['content'].get('status')}")
    out.append("%s login=%.3f server=%.3f kernel=%.3f total=%.3f" %
               (user, t_login - t0, t_server - t0, t_kernel - t0, t_end - t0))

start = threading.Barrier(len(users))
lines, errors = [], []
def thread(user, password):
    try:
        run(user, password, start, lines)
    except Exception as e:  # noqa: BLE001 (reported, and the run fails)
        errors.append(f"{kind}: {user}: {e}")
threads = [threading.Thread(target=thread, args=(u, p)) for u, p in users]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\n".join(sorted(lines)))
if errors:
    sys.exit("\n".join(errors))
PY

hub_api() { curl -sk -H "@$SECRET/hub.auth" "$@"; }
stop_hub_servers() {  # users...
  local u
  for u in "$@"; do hub_api -o /dev/null -X DELETE "https://127.0.0.1:$HUB_PUBLIC/hub/api/users/$u/server" || true; done
  for u in "$@"; do
    for _ in $(seq 300); do
      hub_api "https://127.0.0.1:$HUB_PUBLIC/hub/api/users/$u" | python3 -c "
import json, sys
u = json.load(sys.stdin)
sys.exit(bool(u.get('servers')) or bool(u.get('pending')))" 2>/dev/null && break
      sleep 0.1
    done
    # Its kernel too (the single-user server stops its kernels on SIGTERM).
    for _ in $(seq 50); do pgrep -u "$u" >/dev/null || break; sleep 0.1; done
    pgrep -u "$u" >/dev/null && log "processes of $u still running after its server stopped: $(pgrep -u "$u" -a | head -3)"
  done
  return 0
}
# kernel_run SYSTEM ONE|CONC ROUND ("warm-up": not counted). ONE: a user at
# a time; CONC: CONCURRENT users at once, recorded as the median user's time
# and the slowest user's.
kernel_run() {
  local system=$1 which=$2 round=$3 out users base log_file k
  if [[ $system == dspool ]]; then base=$GW log_file=$WORK/server.log; else base=https://127.0.0.1:$HUB_PUBLIC log_file=$WORK/hub/hub.log; fi
  local file=$SECRET/${which,,}.$system failed=0
  # One at a time every login must succeed; of many at once, the failures
  # are counted and reported (their lines on stderr: "SYSTEM: USER: why").
  if ! out=$(LK_USERS=$file /usr/bin/python3 "$WORK/login_kernel.py" "$system" "$base" 2>"$WORK/login.err"); then
    [[ $which == CONC ]] || { cat "$WORK/login.err" >&2; tail -30 "$log_file"; fail "login to kernel through $system failed"; }
    failed=$(grep -c "^$system: " "$WORK/login.err" || true)
    log "$failed of $CONCURRENT logins at once through $system failed: $(tr '\n' ';' <"$WORK/login.err")"
  fi
  users=$(cut -d' ' -f1 "$file")
  if [[ $system == dspool ]]; then stop_dspool_servers $users; else stop_hub_servers $users; fi
  log "login to kernel, $system, $which, round $round: $(tr '\n' ';' <<<"$out")"
  [[ $round == warm-up ]] && return
  if [[ $which == ONE ]]; then
    for k in login server kernel total; do add "$k.$system" "$(sed -n "s/.* $k=\([0-9.]*\).*/\1/p" <<<"$out")"; done
  else
    add "conc.failed.$system" "$failed"
    local totals; totals=$(sed -n 's/.* total=\([0-9.]*\).*/\1/p' <<<"$out" | sort -g)
    V[conc.round]=$totals
    add "conc.median.$system" "$(median conc.round %.3f)"
    add "conc.max.$system" "$(tail -1 <<<"$totals")"
  fi
  sleep 1
}
kernel_run dspool ONE warm-up
kernel_run hub ONE warm-up
for round in $(seq "$KERNEL_ROUNDS"); do
  if (( round % 2 )); then order="dspool hub"; else order="hub dspool"; fi
  for system in $order; do kernel_run "$system" ONE "$round"; done
  add ratio.total "$(calc %.2f "$(last total.dspool) / $(last total.hub)")"
done
if (( CONCURRENT > 0 )); then
  kernel_run dspool CONC warm-up  # each user's first server in the instance, and their home on the host
  kernel_run hub CONC warm-up
  for round in $(seq "$CONC_ROUNDS"); do
    if (( round % 2 )); then order="dspool hub"; else order="hub dspool"; fi
    for system in $order; do kernel_run "$system" CONC "$round"; done
    add ratio.conc "$(calc %.2f "$(last conc.median.dspool) / $(last conc.median.hub)")"
  done
fi

# ---- the results ----
rounds_where() {  # key awk-condition-on-$1: "; 2 of 3 rounds"
  tr ' ' '\n' <<<"${V[$1]}" | awk "NF {n++; if ($2) k++} END {if (n > 1) printf \"; %d of %d rounds\", k, n}"
}
verdict() { [[ $(awk "BEGIN { print ($1) ? 1 : 0 }") == 1 ]] && echo met || echo "**missed**"; }
commit=$(build_commit "$DSPOOL")
pkg() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null | sed 's/[-+~].*//'; }
row_http() {  # path
  echo "| ${LABEL_OF[$1]} | $(show "rps.$1" %.0f) | $(median "err.$1" %.0f) | $([[ $1 == direct ]] && echo – || echo "$(show "cpureq.$1" %.1f) µs") |"
}
row_open() {  # path: a cell per offered rate, p50 / p99 (min–max), CPU per request
  local rate
  echo -n "| ${LABEL_OF[$1]} |"
  for rate in "${RATES[@]}"; do
    if [[ -z "${V[open.p99_us.$1.$rate]:-}" ]]; then echo -n " past its saturation |"; continue; fi
    echo -n " $(median "open.p50_us.$1.$rate" %.0f) / $(show "open.p99_us.$1.$rate" %.0f) µs"
    [[ $1 == direct ]] || echo -n ", $(median "open.cpu.$1.$rate" %.1f) µs CPU"
    echo -n " |"
  done
  echo
}
open_header() {
  local rate pct
  set -- $LEVELS
  echo -n "| path |"; for rate in "${RATES[@]}"; do echo -n " $rate req/s ($1 %) |"; shift; done; echo
  echo -n "|---|"; for rate in "${RATES[@]}"; do echo -n "---|"; done; echo
}
p99_goal=1
for rate in "${RATES[@]}"; do
  [[ -n "${V[open.p99_us.gateway.$rate]:-}" && -n "${V[open.p99_us.haproxy.$rate]:-}" ]] || continue
  (( $(calc %d "$(median "open.p99_us.gateway.$rate") > $(median "open.p99_us.haproxy.$rate")") )) && p99_goal=0
done
row_ws() { echo "| ${LABEL_OF[$1]} | $(show "wsmed.$1" %.0f) µs | $(show "wsp99.$1" %.0f) µs |"; }
row_kernel() {  # system label
  echo "| $2 | $(show "login.$1" %.3f) s | $(show "server.$1" %.3f) s | $(show "kernel.$1" %.3f) s | $(show "total.$1" %.3f) s |"
}
row_conc() { echo "| $2 | $(show "conc.median.$1" %.2f) s | $(show "conc.max.$1" %.2f) s | $(tr ' ' '\n' <<<"${V[conc.failed.$1]}" | awk 'NF {s += $1} END {print s + 0}') |"; }

CONC_TEXT=""
if (( CONCURRENT > 0 )); then
  CONC_TEXT=$(cat <<MD

**$CONCURRENT logins at once**: $CONCURRENT users log in together (one thread each, released at
once), each to their own answering kernel as above; $CONC_ROUNDS rounds after one untimed
warm-up each, every run cold. Per round: the median user's time and the slowest user's,
of those whose kernel answered; *failed*: logins that did not reach an answering kernel, in
all rounds (the instance has 2 vCPUs; JupyterHub's servers run on the host's $(nproc)).

| system | median user | slowest user | failed |
|---|---|---|---|
$(row_conc dspool "dspool")
$(row_conc hub "JupyterHub")

dspool / JupyterHub, median user: $(median_ratio conc.median.dspool conc.median.hub) (per round $(range ratio.conc | tr -d ' ()')).
MD
)
fi

RESULTS=$(cat <<MD
<!-- bench/jupyter.sh results: begin (generated; the next run replaces this block) -->
    sudo $COMMAND_LINE

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r), load average
$LOAD_AT_START at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end; dspool $commit
(\`--gateway-threads $THREADS\`: $THREADS web proxy threads); HAProxy $(pkg haproxy) (http mode, nbthread
$THREADS, \`http-reuse always\`); configurable-http-proxy $(pkg node-configurable-http-proxy) from Debian and
$CHP_VERSION from npm (Node.js $(node --version 2>/dev/null | tr -d v), one thread each); wrk $(pkg wrk); JupyterHub
$(pkg jupyterhub) with Notebook $(pkg python3-notebook). One instance (2 vCPUs) on the pool's bridge; clients and
proxies on the host, on loopback; every proxy terminates TLS with the pool's self-signed
certificate. $ROUNDS rounds, the order of the paths rotated each round; figures are the
median over rounds (min–max).

**HTTP through each proxy**: $USERS users, each logged in with their own session cookie and
their own server (bench/http_echo, run by the instance's agent as the user's notebook
server: \`dspool server --jupyter-program\`); every request is the next user's
\`GET /user/NAME/api/status\` with that user's cookie (the gateway checks it and adds the
server's token; HAProxy picks the user's backend by the path, each CHP by its route per
user). The direct path is one user's server, plain HTTP. Debian's CHP 4.5.3 sends
\`Connection: close\` upstream (node-http-proxy without an agent), so each of its requests
opens a new connection to the server; CHP from npm keeps them alive. CPU: the proxy
process's user + system time per request (the gateway: the whole \`dspool gateway\`
process).

Requests/s at saturation (wrk -t$WRK_THREADS -c$WRK_CONNS, keep-alive, ${SECS} s; a closed loop, where the
faster proxy also gets more load):

| path | requests/s | errors | CPU per request |
|---|---|---|---|
$(for p in "${PATHS[@]}"; do row_http "$p"; done)

gateway / HAProxy $(median_ratio rps.gateway rps.haproxy) (per round $(range ratio.rps.haproxy | tr -d ' ()')); gateway / CHP (Debian)
$(median_ratio rps.gateway rps.chp) (per round $(range ratio.rps.chp %.1f | tr -d ' ()')); gateway / CHP (npm) $(median_ratio rps.gateway rps.chpnpm)
(per round $(range ratio.rps.chpnpm %.1f | tr -d ' ()')).

Latency at the same offered load through each (bench/http_load's open loop: requests fall due
at the rate whatever the proxy does, on $OPEN_CONNS keep-alive connections, every request the next
user's; latency from when each fell due; ${SECS} s after 1 s of warm-up; $(echo $LEVELS | sed 's/ /, /g') % of HAProxy's
saturated rate; a path runs a level only below 80 % of its own saturated rate). Each cell:
p50 / p99 (min–max), CPU per request:

$(open_header)
$(for p in "${PATHS[@]}"; do row_open "$p"; done)

**WebSocket echo** through each proxy to the same backend: bench/ws_echo, one connection,
$WS_COUNT messages of 32 bytes, each sent once the echo of the one before arrived (after
a warm-up of $(( WS_COUNT / 10 < 200 ? WS_COUNT / 10 : 200 ))); round trip times:

| path | median | p99 |
|---|---|---|
$(for p in "${PATHS[@]}"; do row_ws "$p"; done)

**Login to a kernel that answers**, $KERNEL_ROUNDS round$([[ $KERNEL_ROUNDS == 1 ]] || echo s) in alternating order after one
untimed warm-up each, every run cold (the user's server stopped after each): the login
POST, the user's server answering (dspool: \`api/status\` through the gateway, polled every
100 ms; JupyterHub: /hub/spawn, the spawn-pending page and the single-user server's OAuth
round trip until its page answers, as a browser), \`POST api/kernels\`, then \`6 * 7\` over the
kernel's WebSocket until its execute_reply. Times since the login POST; dspool runs Debian's
Jupyter Notebook in the instance (the agent spawns it as the user), JupyterHub runs
jupyterhub-singleuser (the same Notebook) on the host with LocalProcessSpawner and
PAMAuthenticator. dspool is faster because its agent forks each user's server, and each
server its kernels, from Pythons that have already imported Notebook, IPython and
ipykernel, where JupyterHub starts a new Python that imports them (about a second of CPU
for a server, 0.7 s for a kernel) for every server and every kernel.

| system | logged in | server answers | kernel created | kernel answered |
|---|---|---|---|---|
$(row_kernel dspool "dspool")
$(row_kernel hub "JupyterHub")

dspool / JupyterHub: $(median_ratio total.dspool total.hub) (per round $(range ratio.total | tr -d ' ()')).
$CONC_TEXT

Goals of issue 14, this run:
- requests/s ≥ 1.2 × HAProxy's: $(verdict "$(median rps.gateway) >= 1.2 * $(median rps.haproxy)") ($(median_ratio rps.gateway rps.haproxy)$(rounds_where ratio.rps.haproxy '$1 >= 1.2')).
- p99 at equal offered load ≤ HAProxy's at every level: $( ((p99_goal)) && echo met || echo "**missed**").
- login to an answering kernel ≤ 0.25 × JupyterHub's median: $(verdict "$(median total.dspool) <= 0.25 * $(median total.hub)") ($(median_ratio total.dspool total.hub)$(rounds_where ratio.total '$1 <= 0.25'))$( (( CONCURRENT > 0 )) && echo "; with $CONCURRENT at once: $(verdict "$(median conc.median.dspool) <= 0.25 * $(median conc.median.hub)") ($(median_ratio conc.median.dspool conc.median.hub))").
<!-- bench/jupyter.sh results: end -->
MD
)
publish_results jupyter.sh "Jupyter: the gateway vs HAProxy and configurable-http-proxy, dspool vs JupyterHub (issue 5)"
