#!/usr/bin/env bash
# Jupyter through the pool's address, on real LXC instances running Debian's
# Jupyter Notebook: login with the pool identity, a notebook made through
# the contents API and code run in a kernel over the WebSocket through the
# gateway, the file on the share under notebooks/<user>; another user gets
# 403 and cannot read it; a wrong password gets 401 and no cookie; an idle
# server is culled while one with a busy kernel is not. Servers are forked
# from the agent's zygote (agent/zygote.h).
DSPOOL=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
source "$HERE/lib.sh"
setup_pool_test jp
require_jupyter
SERVER_ARGS=(--cull-check-seconds 5)
start_server

JP=$(free_port)

jupyter_pool_spec 1 "$JP" ', "cullIdleMinutes": 1' >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null
echo 'alice password 1' | dsp user add alice --password-stdin >/dev/null
echo 'bob password 22' | dsp user add bob --password-stdin >/dev/null
wait_ready "$POOL" 1
BASE=https://127.0.0.1:$JP
client() { /usr/bin/python3 "$HERE/jupyter_client.py" "$BASE" "$@"; }

# ---- logins ----
got=$(client alice 'wrong password' login-status)
[[ "$got" == "401 no-cookie" ]] || fail "a wrong password gave '$got', not 401 and no cookie"
got=$(client alice 'alice password 1' login-status)
[[ "$got" == "303 cookie" ]] || fail "a right password gave '$got'"
pass "wrong password: 401 and no cookie; right one: 303 and a session cookie"

# ---- alice's notebook, a kernel over the WebSocket, the file on the share ----
t0=$(date +%s.%N)
out=$(client alice 'alice password 1' notebook notebooks/remote/analysis.ipynb \
        'import os; from ipykernel.kernelapp import IPKernelApp as K; k = K.instance()
print(os.getuid(), os.getcwd(), 6 * 7, open("/proc/%d/comm" % os.getppid()).read().strip(), k.transport,
      os.path.dirname(k.connection_file))') ||
  fail "alice's notebook through the gateway failed"
t1=$(date +%s.%N)
uid_of() { dsp user list -o json | /usr/bin/python3 -c "import json,sys; print([u['uid'] for u in json.load(sys.stdin)['users'] if u['name']=='$1'][0])"; }
alice_uid=$(uid_of alice)
[[ "$out" == "$alice_uid "*" 42 "* ]] || fail "the kernel said '$out' (want alice's uid $alice_uid and 42)"
# Forked by her server's kernel forker (agent/README.md), on a Unix socket
# in her runtime directory, not on TCP ports that many servers starting
# kernels at once can take from one another.
[[ "$out" == *" kernel-forker ipc /run/dspool/jupyter/$alice_uid" ]] ||
  fail "the kernel is not forked, or its channels not ipc in alice's runtime directory: '$out'"
[[ -f "$WORK/share/notebooks/alice/analysis.ipynb" ]] || fail "the notebook is not on the share under notebooks/alice"
[[ "$(stat -c %u "$WORK/share/notebooks/alice/analysis.ipynb")" == "$alice_uid" ]] || fail "the notebook is not alice's"
pass "alice: login → notebook → kernel (forked, ipc) answered over the WebSocket in $(awk "BEGIN{printf \"%.1f\", $t1-$t0}") s; the file is on the share as hers"
# Forked from the agent's zygote (a Python that imported Notebook), not
# started cold: the host's view of the pid the agent reports for it.
INSTANCE=$(first_instance "$POOL")
servers() { agent_get "$INSTANCE" /v1/jupyter/servers; }
pid=$(servers | /usr/bin/python3 -c "import json,sys; print([s['pid'] for s in json.load(sys.stdin)['servers'] if s['user'] == 'alice'][0])")
cmd=$(/usr/bin/python3 - "$pid" <<'PY'
import os, sys
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        ns = [l.split()[1:] for l in open(f"/proc/{p}/status") if l.startswith("NSpid:")][0]
        if len(ns) > 1 and ns[-1] == sys.argv[1]:  # a process in a container with that pid
            print(open(f"/proc/{p}/cmdline").read().replace("\0", " "))
    except (OSError, IndexError):
        pass
PY
)
[[ "$cmd" == *dspool_zygote.py* ]] || fail "alice's server (pid $pid in the instance) is not the zygote's: '$cmd'"
pass "alice's server was forked from the agent's zygote"

# ---- bob cannot reach alice's server nor read her files ----
code=$(client bob 'bob password 22' get /user/alice/api/contents)
[[ "$code" == 403 ]] || fail "bob got $code on alice's server, not 403"
code=$(client bob 'bob password 22' get /user/alice/../alice/api/contents)
[[ "$code" == 400 || "$code" == 403 ]] || fail "bob's path trick got $code"
out=$(client bob 'bob password 22' notebook notebooks/remote/peek.ipynb \
        "import os
try:
    print(open('/datamnt/dsvmshare/notebooks/alice/analysis.ipynb').read()[:10])
except OSError as e:
    print('denied', e.errno)") || fail "bob's own notebook failed"
[[ "$out" == "denied 13" ]] || fail "bob could read alice's notebook: $out"
pass "bob: 403 on alice's server, EACCES on her files"

# ---- culling: bob's kernel stays busy, alice's server is idle ----
client bob 'bob password 22' busy 300 >/dev/null || fail "could not start bob's long cell"
# The agent's servers load dspool_kernels.py: "busy" is a running cell.
busy=$(servers | /usr/bin/python3 -c "import json,sys; print([s.get('busyKernels') for s in json.load(sys.stdin)['servers'] if s['user'] == 'bob'])")
[[ "$busy" == "[1]" ]] || fail "bob's running cell is not reported busy: busyKernels $busy"
for _ in $(seq 60); do
  sleep 5
  metrics=$(curl -s --unix-socket "$DATA/api.sock" http://x/metrics)
  grep -q '^dspool_notebooks_culled_total [1-9]' <<<"$metrics" && break
done
grep -q '^dspool_notebooks_culled_total 1$' <<<"$metrics" || fail "no idle server culled after 5 min: $(grep culled <<<"$metrics")"
# What the instance's agent runs now.
running=$(servers | /usr/bin/python3 -c "import json,sys; print(' '.join(sorted(s['user'] for s in json.load(sys.stdin)['servers'] if s['state'] != 'exited')))")
[[ "$running" == "bob" ]] || fail "notebook servers running after culling: '$running' (want only bob's)"
pass "alice's idle server was culled; bob's, with a busy kernel, runs on"
finish
