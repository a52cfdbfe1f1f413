#!/usr/bin/env bash
# Restarting or upgrading the server ends nothing (issue 13), on real LXC,
# OpenSSH and Jupyter. A pool of one instance with an SSH rule on a front
# port, a NAT port and a Jupyter address; three sessions held open by one
# process each for the whole test: an ssh session through the front port,
# one through the NAT port, and a kernel WebSocket (jupyter_client.py hold).
# They go on working, on the same connections, through
#   A. a SIGTERM of the server, and a new server;
#   B. a kill -9 of the server, and a new server;
#   C. an upgrade of the gateway to a new binary (`dspool gateway upgrade`).
# The gateway keeps its pid through A and B (and relays while no server
# runs); after C a new one runs the new binary. After each event a new
# login works at the front port and the NAT port, `session list` lists the
# two ssh sessions, the browser's cookie is still accepted (session.key),
# and the instance was not restarted (same id, same init pid).
# SKIP_UPGRADE=1 leaves out C only.
DSPOOL=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
source "$HERE/lib.sh"
setup_pool_test gr
require_jupyter
start_server

FRONT=$(free_port)
NAT=$(free_port)
JP=$(free_port)
while [[ "$NAT" == "$FRONT" ]]; do NAT=$(free_port); done
while [[ "$JP" == "$FRONT" || "$JP" == "$NAT" ]]; do JP=$(free_port); done
BASE=https://127.0.0.1:$JP
PASSWORD='alice password 1'

# The processes held open for the whole test, by name (front, nat, ws):
# pid, and the descriptor of the FIFO that is their stdin. Their stdout is
# $WORK/NAME.out, their stderr $WORK/NAME.err.
declare -A HELD_PID HELD_FD
end_held() {
  local name
  for name in "${!HELD_PID[@]}"; do kill "${HELD_PID[$name]}" 2>/dev/null || true; done
}
trap 'set +e; end_held; cleanup' EXIT

cat >"$WORK/spec.json" <<JSON
{"name": "$POOL", "instanceCount": 1,
 "size": {"vcpus": 1, "memoryMiB": 1024},
 "network": {"subnet": "$SUBNET"},
 "share": {"type": "bind", "source": "$WORK/share"},
 "adminUser": {"name": "dsvmadmin", "sshPublicKey": "$(cat "$WORK/key.pub")"},
 "loadBalancer": {
   "rules": [{"name": "SSH", "frontendPort": $FRONT, "backendPort": 22, "probe": "ssh"}],
   "probes": [{"name": "ssh", "protocol": "Tcp", "port": 22, "intervalInSeconds": 5, "numberOfProbes": 2}],
   "inboundNatPools": [{"name": "ssh-nat", "frontendPortRangeStart": $NAT, "frontendPortRangeEnd": $NAT,
                        "backendPort": 22}]},
 "jupyter": {"frontendPort": $JP, "cullIdleMinutes": 0}}
JSON
dsp pool create -f "$WORK/spec.json" >/dev/null
echo "$PASSWORD" | dsp user add alice --password-stdin >/dev/null
wait_ready "$POOL" 1
INSTANCE=$(first_instance "$POOL") \
  || fail "cannot list pool $POOL's instance"
init_pid() { lxc-info -P "$DATA/lxc/containers" -n "$INSTANCE" -pH 2>&1; }
INIT=$(init_pid) || true
[[ "$INIT" =~ ^[0-9]+$ ]] || fail "no init pid for instance $INSTANCE: $INIT"
pass "pool $POOL: instance $INSTANCE (init pid $INIT), ssh at $FRONT and NAT $NAT, Jupyter at $JP"

SSH=(ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
     -o LogLevel=ERROR -o ConnectTimeout=30)
# A new login through PORT runs `hostname`: it must name the instance.
new_login() {  # port what
  local got
  got=$("${SSH[@]}" -p "$1" dsvmadmin@127.0.0.1 hostname 2>&1) || fail "$2: a new ssh login through port $1 failed: $got"
  [[ "$got" == "${POOL}0" ]] || fail "$2: a new ssh login through port $1 reached '$got', not ${POOL}0"
}

# ---- the three held sessions ----

# hold NAME COMMAND...: starts COMMAND (a program, not a function: its pid
# is the program's) with its stdin a FIFO this shell keeps open.
hold() {
  local name=$1 fd
  shift
  mkfifo "$WORK/$name.in"
  "$@" <"$WORK/$name.in" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  HELD_PID[$name]=$!
  exec {fd}>"$WORK/$name.in"
  HELD_FD[$name]=$fd
}
# Fails, saying WHAT, if held process NAME has ended: its exit code and stderr.
held_alive() {  # name what
  local pid=${HELD_PID[$1]} rc=0
  kill -0 "$pid" 2>/dev/null && return 0
  wait "$pid" || rc=$?
  fail "$2: $1 (pid $pid) has ended, exit $rc; its output: $(tail -5 "$WORK/$1.out"); stderr: $(cat "$WORK/$1.err")"
}
# Waits at most SECONDS for a line TEXT in held process NAME's stdout.
expect_line() {  # name text seconds what
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    grep -qxF -- "$2" "$WORK/$1.out" && return 0
    held_alive "$1" "$4"
    sleep 0.2
  done
  fail "$4: no line '$2' from $1 within $3 s; its output: $(tail -5 "$WORK/$1.out"); stderr: $(cat "$WORK/$1.err")"
}
# Writes LINE to held process NAME's stdin.
say() {  # name line what
  held_alive "$1" "$3"
  trap '' PIPE  # a process gone meanwhile: an error from echo, not the end of this script
  echo "$2" >&"${HELD_FD[$1]}" || { trap - PIPE; held_alive "$1" "$3"; fail "$3: cannot write to $1"; }
  trap - PIPE
}
# The local address of held process NAME's established TCP connection to
# PORT on 127.0.0.1: the connection it opened, as long as it is the same.
connection_of() {  # name port
  ss -Htnp state established "( dst 127.0.0.1:$2 )" | grep -F "pid=${HELD_PID[$1]}," | awk '{print $3}' || true
}

REMOTE='echo "open $(hostname)"; while IFS= read -r l; do echo "got $l"; done'
hold front "${SSH[@]}" -p "$FRONT" dsvmadmin@127.0.0.1 "$REMOTE"
hold nat "${SSH[@]}" -p "$NAT" dsvmadmin@127.0.0.1 "$REMOTE"
hold ws /usr/bin/python3 "$HERE/jupyter_client.py" "$BASE" alice "$PASSWORD" hold
expect_line front "open ${POOL}0" 120 "the ssh session through the front port"
expect_line nat "open ${POOL}0" 120 "the ssh session through the NAT port"
# The first notebook server and kernel on a fresh instance (bytecode
# compiled on first use): a generous bound.
for ((i = 0; i < 1500; i++)); do
  grep -q '^ready ' "$WORK/ws.out" && break
  held_alive ws "the kernel WebSocket"
  sleep 0.2
done
grep -q '^ready ' "$WORK/ws.out" || fail "the kernel WebSocket was not open within 300 s: $(cat "$WORK/ws.err")"
declare -A CONN
CONN[front]=$(connection_of front "$FRONT")
CONN[nat]=$(connection_of nat "$NAT")
CONN[ws]=$(connection_of ws "$JP")
for name in front nat ws; do
  [[ -n "${CONN[$name]}" ]] || fail "no established connection of $name (pid ${HELD_PID[$name]}): $(ss -Htnp state established)"
done

# The browser's cookie: a login now, its cookie kept in a curl jar.
code=$(curl -k -sS --max-time 60 -c "$WORK/cookies" -o "$WORK/login.body" -w '%{http_code}' \
         --data-urlencode username=alice --data-urlencode "password=$PASSWORD" "$BASE/hub/login" 2>&1) \
  || fail "the Jupyter login failed: $code"
[[ "$code" == 303 ]] || fail "the Jupyter login answered $code, not 303: $(head -c 300 "$WORK/login.body")"
grep -q dspool_session "$WORK/cookies" || fail "the Jupyter login set no session cookie: $(cat "$WORK/cookies")"

# The session list (SSH sessions) lists a client address.
listed() {  # client
  dsp session list -o json 2>/dev/null | python_json "
import sys
sys.exit(0 if any(s.get('kind') == 'ssh' and s.get('client') == '$1' for s in data['sessions']) else 1)"
}

# Every check after an event (or while no server runs: WHEN says which).
N=0
check_sessions() {  # when
  local when=$1 name
  N=$((N + 1))
  for name in front nat; do
    say $name "line-$N" "$when: the ssh session through the $name port"
    expect_line $name "got line-$N" 60 "$when: the ssh session through the $name port"
  done
  say ws "print('kernel', $N * 1000 + 7)" "$when: the kernel WebSocket"
  expect_line ws "kernel $((N * 1000 + 7))" 120 "$when: the kernel WebSocket"
  for name in front nat ws; do
    local port=$FRONT
    [[ $name == nat ]] && port=$NAT
    [[ $name == ws ]] && port=$JP
    local now
    now=$(connection_of $name $port)
    [[ "$now" == "${CONN[$name]}" ]] || fail "$when: $name's connection from ${CONN[$name]} is gone (now: '${now}')"
  done
}
check_after() {  # when
  local when=$1 got
  check_sessions "$when"
  new_login "$FRONT" "$when"
  new_login "$NAT" "$when"
  # The server knows the gateway's connections again: both held sessions.
  local i
  for ((i = 0; i < 150; i++)); do
    listed "${CONN[front]}" && listed "${CONN[nat]}" && break
    sleep 0.2
  done
  listed "${CONN[front]}" && listed "${CONN[nat]}" \
    || fail "$when: session list does not list the held ssh sessions from ${CONN[front]} and ${CONN[nat]} within 30 s: $(dsp session list -o json 2>&1)"
  # The browser is not logged out: its cookie still opens the login page
  # onto the user's space, and reaches the user's notebook server.
  got=$(curl -k -sS --max-time 60 -b "$WORK/cookies" -o /dev/null -w '%{http_code} %{redirect_url}' "$BASE/hub/login" 2>&1) \
    || fail "$when: GET /hub/login failed: $got"
  [[ "$got" == "302 "*"/user/alice/"* ]] || fail "$when: the login page did not take alice's cookie: '$got'"
  got=$(curl -k -sS --max-time 60 -b "$WORK/cookies" -o "$WORK/status.body" -w '%{http_code}' "$BASE/user/alice/api/status" 2>&1) \
    || fail "$when: GET /user/alice/api/status failed: $got"
  [[ "$got" == 200 ]] || fail "$when: alice's cookie did not reach her notebook server: HTTP $got $(head -c 300 "$WORK/status.body")"
  # The instance was not restarted.
  got=$(dsp instance list --pool "$POOL" -o json | python_json "print(' '.join(i['id'] + ':' + i['phase'] for i in data['instances']))") \
    || fail "$when: cannot list pool $POOL's instances"
  [[ "$got" == "$INSTANCE:Ready" ]] || fail "$when: the pool's instances are '$got', not $INSTANCE:Ready"
  got=$(init_pid) || true
  [[ "$got" == "$INIT" ]] || fail "$when: instance $INSTANCE's init pid is '$got', not $INIT: it was restarted"
}

check_after "before any event"
GATEWAY=$(gateway_pid) || true
[[ -n "$GATEWAY" ]] && kill -0 "$GATEWAY" || fail "no gateway runs (gateway.pid: '$GATEWAY')"
pass "ssh through the front port (${CONN[front]}) and the NAT port (${CONN[nat]}), and the kernel WebSocket (${CONN[ws]}) answer; gateway pid $GATEWAY"

same_gateway() {  # when
  local now
  now=$(gateway_pid) || true
  [[ "$now" == "$GATEWAY" ]] || fail "$1: gateway.pid says '$now', not $GATEWAY"
  kill -0 "$GATEWAY" 2>/dev/null || fail "$1: the gateway (pid $GATEWAY) is gone; server log: $(tail -20 "$WORK/server.log")"
}

# ---- A: SIGTERM, and a new server ----
stop_server
same_gateway "A, no server"
check_sessions "A, no server"
start_server
check_after "A, after a SIGTERM and a new server"
same_gateway "A, after a SIGTERM and a new server"
pass "A: a SIGTERM of the server and a new one: the three sessions, the gateway $GATEWAY and instance $INSTANCE live on; new logins work; the cookie holds"

# ---- B: kill -9, and a new server ----
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
same_gateway "B, no server"
check_sessions "B, no server"
start_server
check_after "B, after a kill -9 and a new server"
same_gateway "B, after a kill -9 and a new server"
pass "B: a kill -9 of the server and a new one: the three sessions, the gateway $GATEWAY and instance $INSTANCE live on; new logins work; the cookie holds"

# ---- C: the gateway upgraded to a new binary ----
if [[ "${SKIP_UPGRADE:-}" == 1 ]]; then
  echo "SKIP_UPGRADE=1: the gateway upgrade (C) left out"
  finish
  exit 0
fi
cp "$DSPOOL" "$WORK/dspool-new"
out=$(dsp gateway upgrade --binary "$WORK/dspool-new" 2>&1) || fail "C: dspool gateway upgrade failed: $out"
upgraded() {
  local pid
  pid=$(gateway_pid) || true
  [[ -n "$pid" && "$pid" != "$GATEWAY" ]] && [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$WORK/dspool-new" ]]
}
for ((i = 0; i < 300; i++)); do upgraded && break; sleep 0.2; done
upgraded || fail "C: within 60 s of the upgrade, gateway.pid does not name a new process running $WORK/dspool-new (gateway.pid: '$(gateway_pid)', its exe: '$(readlink "/proc/$(gateway_pid)/exe" 2>&1)'; the upgrade said: $out)"
NEW_GATEWAY=$(gateway_pid) || true
check_after "C, after the upgrade"
pass "C: the gateway upgraded to $WORK/dspool-new (pid $GATEWAY → $NEW_GATEWAY): the three sessions and instance $INSTANCE live on; new logins work; session list lists the ssh sessions"
finish
