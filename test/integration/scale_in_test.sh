#!/usr/bin/env bash
# Scale-in never ends a live session (issue 13, point 2), on real LXC and
# sshd: `pool scale` down drains the instances it removes and deletes each
# only when its last SSH session has ended; the one without a session goes
# first; a scale-up takes a draining instance back instead of making a new
# one; `--force` deletes at once.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_pool_test scalein
start_server

FRONT=$(free_port)
NAT=$(free_port_pair)
ssh_nat_pool_spec "$FRONT" "$NAT" 2 >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null
wait_ready "$POOL" 2

# "id phase scaleIn" of each instance of the pool, one per line, by index.
instances() {
  dsp instance list --pool "$POOL" -o json | python_json "
for i in sorted(data['instances'], key=lambda i: i['index']):
    print(i['index'], i['id'], i['phase'], i.get('scaleIn', '-'))"
}
id_of() { instances | awk -v k="$1" '$1 == k {print $2}'; }
mark_of() { instances | awk -v id="$1" '$2 == id {print $4}'; }
gone() { ! instances | awk '{print $2}' | grep -qx "$1"; }

# A session through instance K's NAT port that lives until we close its
# input: it echoes each line it reads, so we can see it is alive.
open_session() {  # name index
  local name=$1 k=$2
  mkfifo "$WORK/$name.in"
  ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o LogLevel=ERROR -p $((NAT + k)) dsvmadmin@127.0.0.1 \
      'echo "open on $(hostname)"; while read -r line; do echo "alive $line"; done; echo closed' \
      <"$WORK/$name.in" >"$WORK/$name.out" 2>&1 &
  eval "${name}_PID=$!"
  eval "exec {${name}_FD}>\"\$WORK/\$name.in\""
  wait_until 30 "session $name open" grep -q "^open on $POOL$k" "$WORK/$name.out"
}
# Sends a line and waits for its echo: the session is alive end to end.
ping_session() {  # name word
  local fd_var="${1}_FD"
  echo "$2" >&"${!fd_var}" || fail "session $1 is gone: $(cat "$WORK/$1.out")"
  wait_until 15 "session $1 echoing '$2'" grep -qx "alive $2" "$WORK/$1.out"
}
close_session() {  # name
  local fd_var="${1}_FD" pid_var="${1}_PID"
  eval "exec ${!fd_var}>&-"
  wait "${!pid_var}" || fail "session $1 failed: $(cat "$WORK/$1.out")"
  grep -qx closed "$WORK/$1.out" || fail "session $1 did not end cleanly: $(cat "$WORK/$1.out")"
}

I0=$(id_of 0)
I1=$(id_of 1)
open_session s1 1

# ---- to zero: the idle instance goes, the one with a session stays ----
dsp pool scale "$POOL" --count 0 >"$WORK/scale.out"
grep -q "deleted when their last SSH session" "$WORK/scale.out" || fail "pool scale did not say what happens: $(cat "$WORK/scale.out")"
wait_until 60 "instance $I0 (no session) deleted" gone "$I0"
[[ "$(mark_of "$I1")" == drain ]] || fail "instance $I1 with a session is not being drained: $(instances)"
ping_session s1 one
dsp pool show "$POOL" | grep -q "scale-in: deleted when its 1 open sessions end" \
  || fail "pool show does not say what the drained instance waits for: $(dsp pool show "$POOL")"
pass "scale to 0: the idle instance was deleted; the one with a session is drained and its session lives"

# ---- a scale-up takes the draining instance back ----
dsp pool scale "$POOL" --count 1 >/dev/null
taken_back() { [[ "$(mark_of "$I1")" == - ]]; }
wait_until 30 "instance $I1 taken back" taken_back
wait_ready "$POOL" 1
[[ "$(instances | wc -l)" == 1 ]] || fail "a scale-up made a new instance instead of taking $I1 back: $(instances)"
ping_session s1 two
dsp events | grep -q "instance.scale-in.cancel" || fail "no instance.scale-in.cancel event"
pass "scale to 1: the draining instance was taken back, no new one made, the session lives"

# ---- the last session ends: the instance goes ----
dsp pool scale "$POOL" --count 0 >/dev/null
marked() { [[ "$(mark_of "$I1")" == drain ]]; }
wait_until 30 "instance $I1 marked for scale-in" marked
ping_session s1 three
close_session s1
wait_until 60 "instance $I1 deleted after its last session" gone "$I1"
dsp events | grep -q "scale-in: its last session ended" || fail "the deletion's event does not say why: $(dsp events | tail -5)"
pass "its last session ended, then the instance was deleted"

# ---- --force deletes at once ----
dsp pool scale "$POOL" --count 1 >/dev/null
wait_ready "$POOL" 1
K=$(instances | awk '{print $1}')
I2=$(id_of "$K")
open_session s2 "$K"
dsp pool scale "$POOL" --count 0 --force >"$WORK/scale.out"
grep -q "deleted now" "$WORK/scale.out" || fail "pool scale --force did not say so: $(cat "$WORK/scale.out")"
wait_until 60 "instance $I2 deleted by --force" gone "$I2"
pid_var=s2_PID
wait "${!pid_var}" && fail "the session on a force-deleted instance ended cleanly: $(cat "$WORK/s2.out")"
grep -qx closed "$WORK/s2.out" && fail "the session on a force-deleted instance saw its input end: $(cat "$WORK/s2.out")"
pass "--force: the instance and its session went at once"

dsp pool delete "$POOL" >/dev/null
finish
