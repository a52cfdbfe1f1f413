#!/usr/bin/env bash
# The server's wall clock is set an hour ahead, then two hours back (as an
# NTP step or `date -s` would), while an SSH session through the pool's
# front port and a user's notebook server are open: no instance is failed
# or replaced, the SSH session lives on, the notebook server is not culled
# (its pool culls after 30 idle minutes, checked every second), and the
# server did see the steps (its event timestamps moved). Timeouts, silence
# and idleness run on the monotonic clock (base/clock.h).
#
# The step is the server's alone, through libfaketime (LD_PRELOAD; its
# monotonic clock is left alone): stepping the whole machine's clock would
# reach every other process of the host, CI's among them.
DSPOOL=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
source "$HERE/lib.sh"
setup_pool_test cs
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
[[ -f $FAKETIME_LIB ]] || fail "$FAKETIME_LIB is missing (scripts/install-deps.sh installs libfaketime)"
/usr/bin/python3 -c "import websocket" 2>/dev/null || fail "python3-websocket is missing (scripts/install-deps.sh)"
echo "+0" >"$WORK/wall-offset"
SERVER_WRAPPER=(env LD_PRELOAD="$FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$WORK/wall-offset" FAKETIME_CACHE_DURATION=1
                FAKETIME_DONT_FAKE_MONOTONIC=1)
SERVER_ARGS=(--cull-check-seconds 1)
start_server

FP=$(free_port)
JP=$(free_port)
cat >"$WORK/spec.json" <<JSON
{"name": "$POOL", "instanceCount": 2,
 "size": {"vcpus": 1, "memoryMiB": 1024},
 "network": {"subnet": "$SUBNET"},
 "share": {"type": "bind", "source": "$WORK/share"},
 "adminUser": {"name": "csadmin", "sshPublicKey": "$(cat "$WORK/key.pub")"},
 "loadBalancer": {
   "rules": [{"name": "SSH", "frontendPort": $FP, "backendPort": 22, "probe": "ssh", "idleTimeoutInMinutes": 30}],
   "probes": [{"name": "ssh", "protocol": "Tcp", "port": 22, "intervalInSeconds": 5, "numberOfProbes": 2}]},
 "jupyter": {"frontendPort": $JP, "cullIdleMinutes": 30}}
JSON
dsp pool create -f "$WORK/spec.json" >/dev/null
echo 'alice password 1' | dsp user add alice --password-stdin >/dev/null
wait_ready "$POOL" 2
instances() { dsp instance list --pool "$POOL" -o json | /usr/bin/python3 -c "import json,sys; print(' '.join(sorted(i['id'] for i in json.load(sys.stdin)['instances'])))"; }
BEFORE=$(instances)

# An SSH session through the front port that prints a line every second.
ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
  -p "$FP" csadmin@127.0.0.1 'while true; do date +%s; sleep 1; done' >"$WORK/ssh.out" 2>&1 &
SSH_PID=$!
trap 'kill $SSH_PID 2>/dev/null || true; cleanup' EXIT
lines() { wc -l <"$WORK/ssh.out"; }
for _ in $(seq 60); do (( $(lines) > 0 )) && break; sleep 0.5; done
(( $(lines) > 0 )) || fail "the SSH session through the front port printed nothing: $(cat "$WORK/ssh.out")"

# alice's notebook server, used once, then left alone.
out=$(/usr/bin/python3 "$HERE/jupyter_client.py" "https://127.0.0.1:$JP" alice 'alice password 1' notebook \
        notebooks/remote/t.ipynb 'print(6 * 7)') || fail "alice's notebook failed"
[[ "$out" == 42 ]] || fail "alice's kernel said '$out'"
pass "2 instances, an SSH session through port $FP and alice's notebook server are up"

# The server's idea of the time: the timestamp of a new event.
server_time() {
  dsp user add "probe$RANDOM" >/dev/null
  dsp events -o json | /usr/bin/python3 -c "
import json, sys, datetime
t = max(json.load(sys.stdin)['events'], key=lambda e: e['seq'])['time']
print(int(datetime.datetime.fromisoformat(t.replace('Z', '+00:00')).timestamp()))"
}

# Steps the server's wall clock to OFFSET from the real one, then waits
# through more than every timeout at stake (report_timeout 30 s: 20 reconcile
# passes, one each 2 s), checking the server saw the step.
step_to() {  # OFFSET (libfaketime's: +1h, -1h, +0), expected seconds from the real clock
  local offset=$1 want=$2 passes seen
  echo "$offset" >"$WORK/wall-offset"
  for _ in $(seq 20); do
    seen=$(( $(server_time) - $(date +%s) ))
    (( seen > want - 60 && seen < want + 60 )) && break
    sleep 0.5
  done
  (( seen > want - 60 && seen < want + 60 )) || fail "the server's clock is ${seen}s off, not ${want}s: libfaketime did not step it"
  passes=$(metric dspool_reconcile_passes_total)
  for _ in $(seq 240); do
    (( $(metric dspool_reconcile_passes_total) >= passes + 20 )) && break
    sleep 0.5
  done
  (( $(metric dspool_reconcile_passes_total) >= passes + 20 )) || fail "the reconcile loop stopped after the step to $offset"
}

check_nothing_ended() {  # what
  local before_lines
  [[ "$(instances)" == "$BEFORE" ]] || fail "$1: instances replaced: $BEFORE → $(instances)"
  if dsp events -o json | grep -q '"instance.failed"'; then fail "$1: an instance failed: $(dsp events | grep failed)"; fi
  kill -0 "$SSH_PID" 2>/dev/null || fail "$1: the SSH session ended: $(tail -3 "$WORK/ssh.out")"
  before_lines=$(lines)
  for _ in $(seq 20); do (( $(lines) > before_lines )) && break; sleep 0.5; done
  (( $(lines) > before_lines )) || fail "$1: the SSH session no longer prints"
  [[ "$(metric dspool_notebooks_culled_total)" == 0 ]] || fail "$1: a notebook server was culled"
  dsp session list -o json | grep -q '"user": *"alice"' || fail "$1: alice's notebook session is gone"
}

step_to +1h 3600
check_nothing_ended "an hour ahead"
pass "the wall clock an hour ahead: no instance replaced, the SSH session lives, alice's server is not culled"
step_to -1h -3600
check_nothing_ended "two hours back"
pass "the wall clock two hours back: no instance replaced, the SSH session lives, alice's server is not culled"
step_to +0 0
check_nothing_ended "back to the real time"
pass "and back to the real time: still nothing ended"

kill "$SSH_PID" 2>/dev/null || true
dsp pool delete "$POOL" >/dev/null
finish
