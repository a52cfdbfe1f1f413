#!/usr/bin/env bash
# A user's notebook server that runs out of memory in its instance (issue
# 13, point 8), on a real LXC instance of 384 MiB running Debian's Jupyter
# Notebook: the kernel's OOM killer kills the server (the test makes it the
# first victim: oom_score_adj 1000, set from the host), and the pool says
# so: a "notebook.oom" event naming the user, pool, instance and limit;
# `session list` shows the session failed with why; the user's next page is
# "Your notebook server ran out of memory (limit 384 MiB) and was stopped.
# Reload to start a new one."; the reload starts a new, working server. A
# server killed by hand with SIGKILL (no OOM kill) is reported as "killed by
# signal 9", not as out of memory.
DSPOOL=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
source "$HERE/lib.sh"
setup_pool_test oom
require_jupyter
start_server

JP=$(free_port)
jupyter_pool_spec 1 "$JP" | sed 's/"memoryMiB": 1024/"memoryMiB": 384/' >"$WORK/spec.json"
grep -q '"memoryMiB": 384' "$WORK/spec.json" || fail "the pool spec did not take the 384 MiB size"
dsp pool create -f "$WORK/spec.json" >/dev/null
echo 'alice password 1' | dsp user add alice --password-stdin >/dev/null
wait_ready "$POOL" 1
BASE=https://127.0.0.1:$JP
COOKIES=$WORK/alice.cookies
client() { /usr/bin/python3 "$HERE/jupyter_client.py" "$BASE" alice 'alice password 1' "$@"; }
INSTANCE=$(first_instance "$POOL")

# The host's pid of alice's server: the process of instance $INSTANCE (its
# cgroup) whose pid in the instance is the one the agent reports.
server_host_pid() {
  local pid
  pid=$(agent_get "$INSTANCE" /v1/jupyter/servers |
        python_json "print([s['pid'] for s in data['servers'] if s['user'] == 'alice' and s['state'] == 'ready'][0])")
  /usr/bin/python3 - "$pid" "$INSTANCE" <<'PY'
import os, sys
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        ns = [l.split()[1:] for l in open(f"/proc/{p}/status") if l.startswith("NSpid:")][0]
        if len(ns) > 1 and ns[-1] == sys.argv[1] and f"lxc.payload.{sys.argv[2]}" in open(f"/proc/{p}/cgroup").read():
            print(p)
    except (OSError, IndexError):
        pass
PY
}
events_of() {  # action
  dsp events -o json | python_json "
for e in data['events']:
    if e['action'] == '$1': print(e['detail'])"
}
has_event() { [[ -n "$(events_of "$1")" ]]; }
alice_session() {  # field
  dsp session list -o json | python_json "
print([s['$1'] for s in data['sessions'] if s.get('kind', 'notebook') == 'notebook' and s['user'] == 'alice'][0])"
}

# ---- alice works; a cell takes more than the instance has ----
out=$(client browse "$COOKIES" 'print(6 * 7)') || fail "alice's first notebook did not work: $out"
host_pid=$(server_host_pid) || fail "alice's server is not in the agent's listing: $(agent_get "$INSTANCE" /v1/jupyter/servers)"
[[ -n "$host_pid" ]] || fail "alice's server was not found on the host (instance $INSTANCE)"
pass "alice's notebook works (her server is host pid $host_pid)"
# The cell waits until the test has made the server the OOM killer's first
# choice (oom_score_adj 1000, which processes forked from it later inherit:
# so only once the cell's kernel runs), then allocates without end. The
# kernel's parent is the server's kernel forker; JPY_PARENT_PID is the server.
client until-gone 'import os, time
while open("/proc/%s/oom_score_adj" % os.environ["JPY_PARENT_PID"]).read().strip() != "1000":
    time.sleep(0.05)
x = []
while True:
    x.append(bytearray(16 << 20))' >"$WORK/until-gone.out" 2>&1 &
CELL=$!
busy() {
  [[ "$(agent_get "$INSTANCE" /v1/jupyter/servers |
        python_json "print([s['busyKernels'] for s in data['servers'] if s['user'] == 'alice'])")" == "[1]" ]]
}
wait_until 60 "alice's cell to run (busyKernels 1)" busy
echo 1000 >"/proc/$host_pid/oom_score_adj"
wait "$CELL" || fail "the memory-hungry cell: $(cat "$WORK/until-gone.out")"
pass "the cell used up the memory; the kernel's WebSocket ended ($(cat "$WORK/until-gone.out"))"

wait_until 30 "a notebook.oom event" has_event notebook.oom
detail=$(events_of notebook.oom)
want="the notebook server of alice in pool $POOL on instance $INSTANCE (pid "
[[ "$detail" == "$want"*") ran out of memory (limit 384 MiB) and was stopped" ]] \
  || fail "the notebook.oom event says '$detail' (want '$want... ran out of memory (limit 384 MiB) and was stopped')"
pass "event notebook.oom: $detail"

state=$(alice_session state)
error=$(alice_session error)
[[ "$state" == failed && "$error" == "ran out of memory (limit 384 MiB) and was stopped" ]] \
  || fail "session list -o json shows alice's session '$state' with error '$error'"
table=$(dsp session list)
grep -q "^failed: alice in pool $POOL: ran out of memory (limit 384 MiB) and was stopped$" <<<"$table" \
  || fail "session list does not say why alice's session failed: $table"
pass "session list: alice's session failed, \"$error\""

page=$(client page "$COOKIES") || fail "alice's page: $page"
/usr/bin/python3 - "$page" <<'PY' || fail "alice's page after the OOM kill: $page"
import json, sys
p = json.loads(sys.argv[1])
assert p["status"] == 503, "status %d, not 503" % p["status"]
assert p["refresh"] is None, "the page reloads itself: the user would not read it"
assert ("Your notebook server ran out of memory (limit 384 MiB) and was stopped. Reload to start a new one."
        in p["body"]), "the page does not say it ran out of memory"
PY
pass "alice's next page: \"ran out of memory (limit 384 MiB) and was stopped. Reload to start a new one.\""

# ---- the reload starts a new server ----
out=$(client browse "$COOKIES" 'print(6 * 7)') || fail "after the page, no new working server: $out"
/usr/bin/python3 - "$out" <<'PY' || fail "the reload after the OOM page: $out"
import json, sys
r = json.loads(sys.argv[1])
assert r["first"] == "starting", "the reload did not start a new server (first answer: %s)" % r["first"]
assert r["output"] == "42\n", "the kernel said %r" % r["output"]
PY
[[ "$(alice_session state)" == ready ]] || fail "alice's new session is '$(alice_session state)', not ready"
pass "the reload started a new server, which works ($out)"

# ---- SIGKILL by hand is not out of memory ----
host_pid=$(server_host_pid) || fail "alice's server is not in the agent's listing: $(agent_get "$INSTANCE" /v1/jupyter/servers)"
[[ -n "$host_pid" ]] || fail "alice's new server was not found on the host"
kill -KILL "$host_pid"
wait_until 30 "a notebook.exit event" has_event notebook.exit
detail=$(events_of notebook.exit)
[[ "$detail" == *") exited (killed by signal 9)" ]] || fail "the notebook.exit event says '$detail'"
n=$(events_of notebook.oom | wc -l)
[[ "$n" == 1 ]] || fail "$n notebook.oom events after a SIGKILL by hand (want the first one only): $(events_of notebook.oom)"
[[ "$(alice_session state)" != failed ]] || fail "a SIGKILL by hand failed alice's session: $(alice_session error)"
pass "a SIGKILL by hand: notebook.exit \"killed by signal 9\", no second notebook.oom, the session not failed"
finish
