#!/usr/bin/env bash
# dspool's Jupyter address side by side with its anchors, in one run, on one
# pool of one LXC instance (2 vCPUs):
#   1. HTTP requests/s and latency (wrk --latency, keep-alive) through
#      (a) the dspool gateway's Jupyter port (TLS, session cookie checked,
#      token added), (b) HAProxy 2.6 in http mode (TLS with the same
#      certificate), (c) Debian's configurable-http-proxy (TLS, one route
#      /user/alice added through its REST API), and, for reference, (d) the
#      backend directly (plain HTTP on the pool's bridge);
#   2. WebSocket echo round trips (bench/ws_echo: WS_COUNT small messages,
#      one after the other; median and p99) through the same paths;
#   3. login to a kernel that answers (login POST → the user's server
#      answers → POST api/kernels → execute_request over the kernel's
#      WebSocket → execute_reply): dspool (Debian's Jupyter Notebook in the
#      instance) vs JupyterHub 3.0 (Debian's, PAMAuthenticator with a host
#      user made for the run, LocalProcessSpawner with jupyterhub-singleuser,
#      TLS on its proxy with the same certificate), all on loopback.
# The backend of 1 and 2 is bench/http_echo, run by the instance's agent as
# alice's notebook server: the server runs with --jupyter-program pointing
# at it (copied to the pool's share), so the gateway routes to it exactly
# as to a notebook, and HAProxy and CHP are pointed at the same address and
# port. Measure 3 needs the real Notebook, so the server is then restarted
# on the same --data-dir without the flag: the pool, its instance and its
# users survive a restart, and the first login after it replaces alice's
# http_echo by jupyter-notebook (a new token), in an untimed warm-up round.
# One server process at a time keeps the pool, the instance and the machine
# the same for both phases (two servers would need two pools).
#
# Usage: bench/jupyter.sh BUILD/apps/dspool/dspool [THREADS]
#   THREADS  --gateway-threads (the gateway's web proxy threads) and
#            HAProxy's nbthread (default: 2)
# Environment: ROUNDS (3: rounds of measures 1 and 2, in alternating order
#   of the paths), SECS (10: each wrk run), WRK_THREADS (2), WRK_CONNS (32),
#   WS_COUNT (5000 round trips per run), KERNEL_ROUNDS (5, plus one
#   untimed warm-up each), HTTP_ECHO and WS_ECHO (default: BUILD/bench/,
#   next to the dspool binary), DOCS (docs/benchmarks.md; "-" prints the
#   results only).
# Run as root. Installs wrk, haproxy, jupyterhub, configurable-http-proxy,
# Jupyter Notebook and the Python modules it needs if missing. Creates a host
# user for JupyterHub (removed on exit). Secrets (passwords, the session
# cookie, CHP's and the hub's tokens) stay in 0600 files under the run's
# directory and in environment variables, never in argv. Writes the results
# between this script's markers in docs/benchmarks.md (appending the section
# the first time) and prints them.
set -euo pipefail
COMMAND_LINE="$0 $*"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
for v in HTTP_ECHO WS_ECHO KERNEL_ROUNDS WS_COUNT WRK_CONNS WRK_THREADS SECS ROUNDS; do
  [[ -n "${!v:-}" ]] && COMMAND_LINE="$v=${!v} $COMMAND_LINE"
done
DSPOOL=$(realpath "$1")
THREADS=${2:-2}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WS_COUNT=${WS_COUNT:-5000}
KERNEL_ROUNDS=${KERNEL_ROUNDS:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
HTTP_ECHO=$(realpath "${HTTP_ECHO:-$(dirname "$DSPOOL")/../../bench/http_echo}")
WS_ECHO=$(realpath "${WS_ECHO:-$(dirname "$DSPOOL")/../../bench/ws_echo}")
DOCS=${DOCS:-$REPO/docs/benchmarks.md}
source "$REPO/test/integration/lib.sh"
source "$HERE/lib.sh"
require_root_and_lxc
for tool in "$HTTP_ECHO" "$WS_ECHO"; do
  [[ -x "$tool" ]] || fail "no $tool: build it (ninja -C BUILD http_echo ws_echo) or set HTTP_ECHO / WS_ECHO"
done

# The anchors and Jupyter, from Debian. Before the pool exists: an
# instance's root file system is the host's.
need=()
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

WORK=$(mktemp -d /tmp/dspool-bench-jp.XXXXXX)
DATA=$WORK/data
SECRET=$WORK/secret  # 0700: passwords, cookies, tokens
mkdir -m 700 "$SECRET"
POOL=jpb$RANDOM
POOL=${POOL:0:8}
SUBNET=$(free_subnet)
USER_NAME=alice
HUB_USER=dspjh$RANDOM
HUB_USER_MADE=""
HA_PID=""
CHP_PID=""
HUB_PID=""

bench_cleanup() {
  set +e
  local pid
  for pid in "$HUB_PID" "$CHP_PID" "$HA_PID"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  # The hub stops its single-user server and its proxy on SIGTERM; what a
  # killed hub left runs as the hub user or under its pid file.
  [[ -f "$WORK/hub/proxy.pid" ]] && kill "$(cat "$WORK/hub/proxy.pid")" 2>/dev/null
  if [[ -n "$HUB_USER_MADE" ]]; then
    for pid in $(pgrep -u "$HUB_USER"); do kill "$pid" 2>/dev/null; done
    for _ in $(seq 50); do pgrep -u "$HUB_USER" >/dev/null || break; sleep 0.1; done
    for pid in $(pgrep -u "$HUB_USER"); do kill -9 "$pid" 2>/dev/null; done
    sleep 0.2
    userdel -r "$HUB_USER" >/dev/null 2>&1 || echo "bench: could not remove the host user $HUB_USER" >&2
  fi
  bench_teardown  # bench/lib.sh: the pool, then the server, containers, bridge, WORK
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM


read -r JP HA_PORT CHP_PORT CHP_API HUB_PUBLIC HUB_PORT HUB_API <<<"$(for _ in 1 2 3 4 5 6 7; do free_port; done | sort -u | xargs)"
[[ -n "$HUB_API" ]] || fail "could not find 7 distinct free ports"

# ---- the dspool server, the pool, alice (bench/lib.sh) ----
echo_pool_up "$THREADS"

# ---- HAProxy: http mode, TLS with the pool's certificate ----
(umask 077; cat "$DATA/pools/$POOL/jupyter.crt" "$DATA/pools/$POOL/jupyter.key" >"$SECRET/haproxy.pem")
cat >"$WORK/haproxy.cfg" <<CFG
global
    nbthread $THREADS
    maxconn 4096
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
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HA_PID=$!
wait_listening "$HA_PORT" haproxy "$WORK/haproxy.log"

# ---- configurable-http-proxy: its token in its environment only ----
secret_file chp.token
(umask 077; printf 'Authorization: token %s\n' "$(cat "$SECRET/chp.token")" >"$SECRET/chp.auth")
CONFIGPROXY_AUTH_TOKEN=$(cat "$SECRET/chp.token") NODE_PATH=/usr/share/nodejs \
  /usr/bin/configurable-http-proxy --ip 127.0.0.1 --port "$CHP_PORT" --api-ip 127.0.0.1 --api-port "$CHP_API" \
  --ssl-key "$DATA/pools/$POOL/jupyter.key" --ssl-cert "$DATA/pools/$POOL/jupyter.crt" --log-level warn \
  >"$WORK/chp.log" 2>&1 &
CHP_PID=$!
wait_listening "$CHP_API" "configurable-http-proxy's API" "$WORK/chp.log"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "@$SECRET/chp.auth" -X POST -d "{\"target\": \"http://$BACKEND\"}" \
       "http://127.0.0.1:$CHP_API/api/routes/user/$USER_NAME")
[[ "$code" == 201 ]] || fail "adding CHP's route /user/$USER_NAME: HTTP $code"

declare -A BASE_OF=([gateway]=$GW [haproxy]=https://127.0.0.1:$HA_PORT [chp]=https://127.0.0.1:$CHP_PORT
                    [direct]=http://$BACKEND)
declare -A PID_OF=([gateway]=$(gateway_pid) [haproxy]=$HA_PID [chp]=$CHP_PID [direct]="")
for path in gateway haproxy chp direct; do
  got=$(curl -sk -H "@/dev/stdin" "${BASE_OF[$path]}/user/$USER_NAME/x" <<<"Cookie: $COOKIE")
  [[ "$got" == "http_echo: ok" ]] || fail "$path does not reach http_echo: '$got'"
done

# ---- helpers ----
PATHS=(gateway haproxy chp direct)
# Round r runs the paths in this order, then the reverse, and so on.
paths_for() { (( $1 % 2 )) && echo "${PATHS[@]}" || echo "direct chp haproxy gateway"; }
declare -A V
add() { V[$1]="${V[$1]:-} $2"; }
last() { awk '{print $NF}' <<<"${V[$1]}"; }
mean() { tr ' ' '\n' <<<"${V[$1]}" | awk -v f="${2:-%.2f}" 'NF {s += $1; n++} END {printf f, s / n}'; }
median() { tr ' ' '\n' <<<"${V[$1]}" | awk 'NF' | sort -g | awk -v f="${2:-%.2f}" '{a[n++] = $1}
  END {printf f, (n % 2) ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2}'; }
range() { tr ' ' '\n' <<<"${V[$1]}" | awk -v f="${2:-%.2f}" 'NF {if (n == 0 || $1 < lo) lo = $1; if (n == 0 || $1 > hi) hi = $1; n++}
  END {if (n > 1) printf " (" f "–" f ")", lo, hi}'; }
show() { echo "$(mean "$1" "${2:-%.2f}")$(range "$1" "${2:-%.2f}")"; }  # mean (min–max)
cpu_ticks() { [[ -z "$1" ]] && { echo 0; return; }; awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# wrk sends the cookie from its environment (a Lua line), not from argv.
cat >"$WORK/cookie.lua" <<'LUA'
wrk.headers["Cookie"] = os.getenv("WRK_COOKIE")
LUA

# ---- 1. HTTP requests/s and latency ----
wrk_run() {  # path round
  local path=$1 out c0 c1 t0 t1 rps p50 p99 errors
  c0=$(cpu_ticks "${PID_OF[$path]}"); t0=$(date +%s%N)
  out=$(WRK_COOKIE="$COOKIE" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${SECS}s" --latency -s "$WORK/cookie.lua" \
        "${BASE_OF[$path]}/user/$USER_NAME/api/status" 2>&1) || fail "wrk through $path failed: $out"
  c1=$(cpu_ticks "${PID_OF[$path]}"); t1=$(date +%s%N)
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  errors=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
                END {print n + 0}' <<<"$out")
  [[ -n "$rps" && -n "$p99" ]] || fail "cannot read wrk's output through $path: $out"
  add "rps.$path" "$rps"; add "p50.$path" "$p50"; add "p99.$path" "$p99"; add "err.$path" "$errors"
  add "cpu.$path" "$(calc %.0f "100 * ($c1 - $c0) / $HZ / (($t1 - $t0) / 1e9)")"
  log "wrk $path, round $2: $rps req/s, p50 $p50 µs, p99 $p99 µs, errors $errors, proxy CPU $(last "cpu.$path") %"
}
for round in $(seq "$ROUNDS"); do
  for path in $(paths_for "$round"); do sleep 1; wrk_run "$path" "$round"; done
  add ratio.rps.haproxy "$(calc %.2f "$(last rps.gateway) / $(last rps.haproxy)")"
  add ratio.rps.chp "$(calc %.1f "$(last rps.gateway) / $(last rps.chp)")"
  add ratio.p99.haproxy "$(calc %.2f "$(last p99.gateway) / $(last p99.haproxy)")"
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

# The proxies of phase 1 are done; stop them so phase 2 runs on a quiet machine.
for pid in "$CHP_PID" "$HA_PID"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
CHP_PID=""; HA_PID=""

# ---- 3. login to a kernel that answers ----
# The dspool server again, with the default notebook program.
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true
start_dspool
wait_ready "$POOL" 1
wait_listening "$JP" "the gateway's Jupyter address (after the restart)" "$WORK/server.log"

# JupyterHub: a host user with a password for PAM, the hub's service token
# read from a 0600 file by its configuration, TLS with the same certificate.
useradd -m -s /bin/bash "$HUB_USER"
HUB_USER_MADE=1
secret_file hub.pw
printf '%s:%s\n' "$HUB_USER" "$(cat "$SECRET/hub.pw")" | chpasswd
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
c.Authenticator.allowed_users = {'$HUB_USER'}
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

# One login-to-kernel run, as a browser and the notebook page would do it:
# prints "login=S server=S kernel=S total=S" (seconds since the login POST).
cat >"$WORK/login_kernel.py" <<'PY'
import json, os, sys, time, uuid, warnings
import requests, websocket
warnings.filterwarnings("ignore")
kind, base, user = sys.argv[1:4]
password = os.environ["LK_PASSWORD"]
s = requests.Session()
s.verify = False
s.trust_env = False  # REQUESTS_CA_BUNDLE and proxies from the environment would override verify
if kind == "hub":
    s.get(base + "/hub/login")  # the login page: its _xsrf cookie, before the clock starts
t0 = time.monotonic()
form = {"username": user, "password": password}
if kind == "hub":
    form.update({"_xsrf": c.value for c in s.cookies if c.name == "_xsrf"})
r = s.post(base + "/hub/login" + ("?next=" if kind == "hub" else ""), data=form, allow_redirects=False)
if r.status_code not in (302, 303):
    sys.exit(f"{kind}: login: HTTP {r.status_code}")
t_login = time.monotonic()
deadline = t0 + 120
headers = {}
if kind == "hub":
    # As the browser: /hub/spawn, the spawn-pending page, the single-user
    # server's OAuth round trip, until its page answers.
    r = s.get(base + "/hub/spawn")
    while not (r.url.startswith(f"{base}/user/{user}/") and r.status_code == 200):
        if time.monotonic() > deadline:
            sys.exit(f"hub: {user}'s server did not start: {r.status_code} {r.url}")
        time.sleep(0.1)
        r = s.get(f"{base}/user/{user}/tree")
    xsrf = sorted((not c.path.startswith(f"/user/{user}"), c.value) for c in s.cookies if c.name == "_xsrf")
    headers = {"X-XSRFToken": xsrf[0][1] if xsrf else ""}
else:
    # The gateway started the server at the login; its API answers once it is up.
    while s.get(f"{base}/user/{user}/api/status").status_code != 200:
        if time.monotonic() > deadline:
            sys.exit(f"dspool: {user}'s server did not start")
        time.sleep(0.1)
t_server = time.monotonic()
r = s.post(f"{base}/user/{user}/api/kernels", json={"name": "python3"}, headers=headers)
if r.status_code not in (200, 201):
    sys.exit(f"{kind}: POST api/kernels: HTTP {r.status_code} {r.text[:200]}")
kernel = r.json()["id"]
t_kernel = time.monotonic()
cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies
                   if c.path in ("/", f"/user/{user}/", f"/user/{user}"))
ws = websocket.create_connection(base.replace("https://", "wss://") + f"/user/{user}/api/kernels/{kernel}/channels",
                                 sslopt={"cert_reqs": 0, "check_hostname": False},
                                 header=[f"Cookie: {cookie}"], timeout=120)
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
    sys.exit(f"{kind}: the kernel answered {m['content'].get('status')}")
print("login=%.3f server=%.3f kernel=%.3f total=%.3f" % (t_login - t0, t_server - t0, t_kernel - t0, t_end - t0))
PY

# Stops the user's server (and so its kernel) so the next run starts cold.
stop_dspool_server() {
  dsp session stop "$USER_NAME" >/dev/null 2>&1 || true
  for _ in $(seq 100); do
    control /v1/jupyter/servers | python3 -c "
import json, sys
sys.exit(any(s['user'] == '$USER_NAME' and s['state'] != 'exited' for s in json.load(sys.stdin)['servers']))" && return 0
    sleep 0.1
  done
  fail "alice's notebook server did not stop"
}
hub_api() { curl -sk -H "@$SECRET/hub.auth" "$@"; }
stop_hub_server() {
  hub_api -o /dev/null -X DELETE "https://127.0.0.1:$HUB_PUBLIC/hub/api/users/$HUB_USER/server" || true
  for _ in $(seq 200); do
    hub_api "https://127.0.0.1:$HUB_PUBLIC/hub/api/users/$HUB_USER" | python3 -c "
import json, sys
u = json.load(sys.stdin)
sys.exit(bool(u.get('servers')) or bool(u.get('pending')))" 2>/dev/null && break
    sleep 0.1
  done
  # Its kernel too (the single-user server stops its kernels on SIGTERM).
  for _ in $(seq 50); do pgrep -u "$HUB_USER" >/dev/null || return 0; sleep 0.1; done
  log "processes of $HUB_USER still running after its server stopped: $(pgrep -u "$HUB_USER" -a | head -3)"
}
kernel_run() {  # system round ("warm-up": not counted)
  local out
  if [[ $1 == dspool ]]; then
    out=$(LK_PASSWORD=$(cat "$SECRET/alice.pw") /usr/bin/python3 "$WORK/login_kernel.py" dspool "$GW" "$USER_NAME") \
      || { tail -20 "$WORK/server.log"; fail "login to kernel through dspool failed"; }
    stop_dspool_server
  else
    out=$(LK_PASSWORD=$(cat "$SECRET/hub.pw") /usr/bin/python3 "$WORK/login_kernel.py" hub \
          "https://127.0.0.1:$HUB_PUBLIC" "$HUB_USER") || { tail -30 "$WORK/hub/hub.log"; fail "login to kernel through JupyterHub failed"; }
    stop_hub_server
  fi
  log "login to kernel, $1, round $2: $out"
  [[ $2 == warm-up ]] && return
  local k
  for k in login server kernel total; do add "$k.$1" "$(sed -n "s/.*$k=\([0-9.]*\).*/\1/p" <<<"$out")"; done
  sleep 1
}
kernel_run dspool warm-up
kernel_run hub warm-up
for round in $(seq "$KERNEL_ROUNDS"); do
  if (( round % 2 )); then order="dspool hub"; else order="hub dspool"; fi
  for system in $order; do kernel_run "$system" "$round"; done
  add ratio.total "$(calc %.2f "$(last total.dspool) / $(last total.hub)")"
done

# ---- the results ----
ratio() { calc %.2f "($1) / ($2)"; }
per_round() { tr ' ' '\n' <<<"${V[$1]}" | awk -v f="${2:-%.2f}" 'NF {if (n == 0 || $1 < lo) lo = $1; if (n == 0 || $1 > hi) hi = $1; n++}
  END {if (n > 1) printf ", per round " f "–" f, lo, hi}'; }
rounds_where() {  # key awk-condition-on-$1: "; 2 of 3 rounds"
  tr ' ' '\n' <<<"${V[$1]}" | awk "NF {n++; if ($2) k++} END {if (n > 1) printf \"; %d of %d rounds\", k, n}"
}
verdict() { [[ $(awk "BEGIN { print ($1) ? 1 : 0 }") == 1 ]] && echo met || echo "**missed**"; }
m() { mean "$1" "${2:-%.2f}"; }
commit=$(build_commit "$DSPOOL")
pkg() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null | sed 's/[-+~].*//'; }
rounds_text=$([[ $ROUNDS == 1 ]] && echo "from one round" || echo "the mean of $ROUNDS rounds (min–max)")
RG=$(m rps.gateway); RH=$(m rps.haproxy); RC=$(m rps.chp)
PG=$(m p99.gateway %.0f); PH=$(m p99.haproxy %.0f)
TD=$(m total.dspool %.3f); TH=$(m total.hub %.3f)
row_http() {  # path label
  echo "| $2 | $(show "rps.$1" %.0f) | $(m "p50.$1" %.0f) µs | $(show "p99.$1" %.0f) µs | $(m "err.$1" %.0f) | $([[ $1 == direct ]] && echo – || echo "$(m "cpu.$1" %.0f) %") |"
}
row_ws() { echo "| $2 | $(show "wsmed.$1" %.0f) µs | $(show "wsp99.$1" %.0f) µs |"; }
row_kernel() {  # system label
  local spread
  spread=$(range "total.$1" %.3f | tr -d ' ()')
  echo "| $2 | $(m "login.$1" %.3f) s | $(m "server.$1" %.3f) s | $(m "kernel.$1" %.3f) s | $(m "total.$1" %.3f) s | $(median "total.$1" %.3f) s | ${spread:+$spread s} |"
}

RESULTS=$(cat <<MD
<!-- bench/jupyter.sh results: begin (generated; the next run replaces this block) -->
    sudo $COMMAND_LINE

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r), load average
$LOAD_AT_START at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end; dspool $commit
(\`--gateway-threads $THREADS\`: $THREADS web proxy threads); HAProxy $(pkg haproxy) (http mode, nbthread
$THREADS); configurable-http-proxy $(pkg node-configurable-http-proxy) (Node.js $(node --version 2>/dev/null | tr -d v),
one thread); wrk $(pkg wrk); JupyterHub $(pkg jupyterhub) with Notebook $(pkg python3-notebook). One instance
(2 vCPUs) on the pool's bridge; clients and proxies on the host, on loopback; every proxy
terminates TLS with the pool's self-signed certificate. Figures are $rounds_text.

**HTTP through each proxy** to one backend, bench/http_echo run by the instance's agent as
alice's notebook server (\`dspool server --jupyter-program\`): wrk, $WRK_THREADS threads,
$WRK_CONNS keep-alive connections, ${SECS} s, \`GET /user/alice/api/status\` with alice's
session cookie (the gateway checks it and adds the server's token; the others pass it on).
Proxy CPU: the proxy process's user + system time over the run (100 % = one CPU); the
gateway's is the whole \`dspool gateway\` process.

| path | requests/s | p50 | p99 | errors | proxy CPU |
|---|---|---|---|---|---|
$(row_http gateway "dspool gateway")
$(row_http haproxy "HAProxy")
$(row_http chp "configurable-http-proxy")
$(row_http direct "direct (plain HTTP, reference)")
| gateway / HAProxy | $(ratio "$RG" "$RH")$(per_round ratio.rps.haproxy) | | $(ratio "$PG" "$PH")$(per_round ratio.p99.haproxy) | | |
| gateway / CHP | $(calc %.1f "$RG / $RC")$(per_round ratio.rps.chp %.1f) | | | | |

**WebSocket echo** through each proxy to the same backend: bench/ws_echo, one connection,
$WS_COUNT messages of 32 bytes, each sent once the echo of the one before arrived (after
a warm-up of $(( WS_COUNT / 10 < 200 ? WS_COUNT / 10 : 200 ))); round trip times:

| path | median | p99 |
|---|---|---|
$(row_ws gateway "dspool gateway")
$(row_ws haproxy "HAProxy")
$(row_ws chp "configurable-http-proxy")
$(row_ws direct "direct (plain WebSocket, reference)")

**Login to a kernel that answers**, $KERNEL_ROUNDS round$([[ $KERNEL_ROUNDS == 1 ]] || echo s) in alternating order after one
untimed warm-up each, every run cold (the user's server stopped after each): the login
POST, the user's server answering (dspool: \`api/status\` through the gateway, polled every
100 ms; JupyterHub: /hub/spawn, the spawn-pending page and the single-user server's OAuth
round trip until its page answers, as a browser), \`POST api/kernels\`, then \`6 * 7\` over the
kernel's WebSocket until its execute_reply. Times since the login POST; dspool runs Debian's
Jupyter Notebook in the instance (the agent spawns it as the user), JupyterHub runs
jupyterhub-singleuser (the same Notebook) on the host with LocalProcessSpawner and
PAMAuthenticator.

| system | logged in | server answers | kernel created | kernel answered (mean) | median | min–max |
|---|---|---|---|---|---|---|
$(row_kernel dspool "dspool")
$(row_kernel hub "JupyterHub")
| dspool / JupyterHub | | | | $(ratio "$TD" "$TH")$(per_round ratio.total) | | |

Goals of the issue, this run:
- requests/s ≥ HAProxy's: $(verdict "$RG >= $RH") on the mean ($(ratio "$RG" "$RH")$(rounds_where ratio.rps.haproxy '$1 >= 1')).
- requests/s ≥ 20 × configurable-http-proxy's: $(verdict "$RG >= 20 * $RC") on the mean ($(calc %.1f "$RG / $RC") ×$(rounds_where ratio.rps.chp '$1 >= 20')).
- p99 latency ≤ HAProxy's: $(verdict "$PG <= $PH") on the mean ($PG µs vs $PH µs$(rounds_where ratio.p99.haproxy '$1 <= 1')).
- login to a kernel ≤ half of JupyterHub's: $(verdict "$TD <= 0.5 * $TH") on the mean ($TD s vs $TH s,
  $(ratio "$TD" "$TH")$(rounds_where ratio.total '$1 <= 0.5')).
<!-- bench/jupyter.sh results: end -->
MD
)
publish_results jupyter.sh "Jupyter: the gateway vs HAProxy and configurable-http-proxy, dspool vs JupyterHub (issue 5)"
