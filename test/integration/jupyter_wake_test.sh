#!/usr/bin/env bash
# Jupyter waking from zero (issue 13, point 7), on real LXC instances running
# Debian's Jupyter Notebook: a browser login at a pool of zero instances gets
# the "starting" page at once (200, never a 5xx), and the page leads to a
# working notebook (a kernel runs code) once the pool has woken. Then the
# pool goes back to zero twice, with the user's server still running
# (forced scale-in), and the way a team leaves (scale-in waits for the
# server, which is stopped): each time the same browser's next visit sees
# only the "starting" page (no 5xx, no route to the deleted instance) and
# reaches a new, working server.
DSPOOL=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
source "$HERE/lib.sh"
setup_pool_test jw
require_jupyter
start_server

JP=$(free_port)
jupyter_pool_spec 0 "$JP" >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null
echo 'alice password 1' | dsp user add alice --password-stdin >/dev/null
BASE=https://127.0.0.1:$JP
wait_until 30 "the pool's Jupyter address to listen" bash -c "ss -Htln 'sport = :$JP' | grep -q ."
COOKIES=$WORK/alice.cookies

# browse WHAT: the browser (cookies in $COOKIES) loads alice's page until her
# notebook answers and runs code in a kernel; checks that the first answer
# was the "starting" page (200), that the page's held request
# (/hub/spawn-pending) redirected to the notebook once it was ready, that no
# answer was a 5xx (the client stops at the first), and that the kernel ran
# the code.
browse() {
  local out
  out=$(/usr/bin/python3 "$HERE/jupyter_client.py" "$BASE" alice 'alice password 1' browse "$COOKIES" \
          'print(6 * 7)') || fail "$1: the browser did not reach a working notebook"
  /usr/bin/python3 - "$out" "$1" <<'PY' || fail "$1: $out"
import json, sys
r = json.loads(sys.argv[1])
assert r["first"] == "starting" and r["statuses"][0] == 200, "the first answer was not the starting page"
assert r["statuses"][-2:] == [302, 200], "the starting page did not lead, by its held request, to the notebook"
assert all(s < 500 for s in r["statuses"]), "an answer was a 5xx"
assert r["output"] == "42\n", "the kernel said %r" % r["output"]
PY
  echo "$out"
}
instances() { dsp instance list --pool "$POOL" -o json | /usr/bin/python3 -c "import json,sys; print(' '.join(i['id'] for i in json.load(sys.stdin)['instances']))"; }

# ---- (a) a login at zero ----
[[ -z "$(instances)" ]] || fail "the pool has instances before anyone came: $(instances)"
out=$(browse "a login at zero")
first=$(instances)
[[ -n "$first" ]] || fail "the login did not wake the pool"
pass "a login at zero: the starting page at once, then a working notebook on the woken instance $first ($out)"

# ---- (b) forced to zero under the user's running server, then back ----
dsp pool scale "$POOL" --count 0 --force >/dev/null
wait_ready "$POOL" 0
out=$(browse "the same browser after a forced scale-in to zero")
second=$(instances)
[[ -n "$second" && "$second" != "$first" ]] || fail "no new instance after the scale-in (have '$second', had '$first')"
grep -q "notebook server of alice in pool $POOL went with its instance" "$WORK/server.log" \
  || fail "the gateway did not forget alice's server when its instance went"
pass "forced to zero under alice's server: her next visit saw only the starting page, then a working notebook on $second ($out)"

# ---- (c) everyone leaves: scale-in waits for the server, which is stopped ----
dsp pool scale "$POOL" --count 0 >/dev/null
draining() {
  [[ "$(dsp instance list --pool "$POOL" -o json | /usr/bin/python3 -c "import json,sys; print(' '.join(i.get('scaleIn', '-') for i in json.load(sys.stdin)['instances']))")" == drain ]]
}
wait_until 30 "instance $second to be chosen for scale-in, draining" draining
dsp session stop alice --pool "$POOL" >/dev/null
wait_ready "$POOL" 0
out=$(browse "the same browser after the team left")
third=$(instances)
[[ -n "$third" && "$third" != "$second" ]] || fail "no new instance after the pool emptied (have '$third')"
pass "scale-in waited for alice's server; once stopped, the pool went to zero and her next visit woke it ($out)"
finish
