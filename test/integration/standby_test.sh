#!/usr/bin/env bash
# Standby instances (issue 14: scale 0 → 1 in milliseconds), on real LXC,
# the cgroup freezer and sshd: a pool's standbyCount keeps instances booted
# and frozen beyond instanceCount; no connection reaches one; a connection
# that wakes the pool, or a scale-out, takes one (thawed, the same
# instance, serving) and a new one replaces it; standbys use only the NAT
# slots the instances leave; lowering standbyCount removes them.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_pool_test standby
start_server

FRONT=$(free_port)
NAT=$(free_port_pair)
ssh_nat_pool_spec "$FRONT" "$NAT" 0 ', "standbyCount": 1' >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null

# "index id phase standby" of each instance of the pool, one per line, by index.
instances() {
  dsp instance list --pool "$POOL" -o json | python_json "
for i in sorted(data['instances'], key=lambda i: i['index']):
    print(i['index'], i['id'], i['phase'], 'standby' if i.get('standby') else '-')"
}
# The pool has exactly: instances "index:id-or-*:Ready:-|standby" ... in
# that order, every standby frozen and every other instance thawed.
shape_is() {
  local want="$*" have="" line k id phase standby
  while read -r k id phase standby; do
    [[ $phase == Ready ]] || return 1
    if [[ $standby == standby ]]; then
      [[ "$(freezer_state "$id")" == FROZEN ]] || return 1
    else
      [[ "$(freezer_state "$id")" == THAWED ]] || return 1
    fi
    have+="$k:$standby "
  done < <(instances)
  [[ "${have% }" == "$want" ]]
}
id_of() { instances | awk -v k="$1" '$1 == k {print $2}'; }
ssh_via() {  # port command...
  local port=$1; shift
  ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o LogLevel=ERROR -o ConnectTimeout=60 -p "$port" dsvmadmin@127.0.0.1 "$@"
}

# ---- the standby boots, then freezes; nothing reaches it ----
wait_until 120 "one Ready standby, frozen" shape_is "0:standby"
S0=$(id_of 0)
dsp pool show "$POOL" >"$WORK/show.out"
grep -q "^Standbys: *1 desired, 1 ready (frozen)" "$WORK/show.out" \
  || fail "pool show does not count the standby: $(cat "$WORK/show.out")"
grep -q "standby: frozen; the next scale-out takes it" "$WORK/show.out" \
  || fail "pool show does not say what the standby is: $(cat "$WORK/show.out")"
if dsp instance drain "$S0" >"$WORK/drain.out" 2>&1; then fail "draining a standby was accepted"; fi
grep -q "is a standby of pool '$POOL'" "$WORK/drain.out" || fail "drain of a standby: $(cat "$WORK/drain.out")"
# A NAT slot names an instance; the standby holds slot 0 but is not one
# yet: the gateway refuses (a reset), where the frozen sshd would accept and
# never answer.
if ssh_via "$NAT" true 2>"$WORK/nat.err"; then fail "NAT slot 0 reached the frozen standby"; fi
grep -q "Connection reset by peer" "$WORK/nat.err" || fail "NAT slot 0 was not refused: $(cat "$WORK/nat.err")"
pass "the standby booted, froze, and no drain or NAT slot reaches it"

# ---- a connection to the pool at zero takes the standby ----
took=$(ssh_via "$FRONT" hostname) || fail "ssh through the gateway to the pool at zero failed"
[[ "$took" == "${POOL}0" ]] || fail "the waking connection landed on '$took', not the standby ${POOL}0"
[[ "$(id_of 0)" == "$S0" ]] || fail "index 0 is no longer the standby $S0: $(instances)"
dsp events | grep "instance.standby.take" | grep -q "instance/$S0" \
  || fail "no event says the standby was taken: $(dsp events | tail -8)"
dsp events | grep -q "pool.wake" || fail "the connection did not wake the pool: $(dsp events | tail -8)"
pass "a connection to the pool at zero woke it and was served by the thawed standby $S0"

wait_until 120 "the instance serving and a new standby, frozen" shape_is "0:- 1:standby"
S1=$(id_of 1)
pass "a new standby $S1 replaced the one taken"

# ---- a scale-out takes it too; NAT slots bound the standbys ----
dsp pool scale "$POOL" --count 2 >/dev/null
wait_until 60 "two instances serving" shape_is "0:- 1:-"
[[ "$(id_of 1)" == "$S1" ]] || fail "the scale-out did not take the standby $S1: $(instances)"
[[ "$(ssh_via $((NAT + 1)) hostname)" == "${POOL}1" ]] || fail "NAT slot 1 does not reach the taken standby"
dsp pool show "$POOL" | grep -q "^Standbys: *1 desired, 0 ready" \
  || fail "pool show: $(dsp pool show "$POOL")"
pass "pool scale took the standby $S1; with both NAT slots used, no standby is made"

# ---- scaling in frees a slot for a standby; standbyCount 0 removes it ----
dsp pool scale "$POOL" --count 1 --force >/dev/null
wait_until 120 "one instance and a standby again" shape_is "0:- 1:standby"
S2=$(id_of 1)
[[ "$S2" != "$S1" ]] || fail "the standby at slot 1 is the deleted instance $S1"
dsp pool scale "$POOL" --standby 0 >"$WORK/scale.out"
grep -q "it keeps 0 standbys" "$WORK/scale.out" || fail "pool scale --standby: $(cat "$WORK/scale.out")"
wait_until 60 "the standby removed" shape_is "0:-"
dsp events | grep "instance.delet" | grep "instance/$S2" | grep -q "standbyCount is 0" \
  || fail "the standby's deletion does not say why: $(dsp events | tail -8)"
pass "a scale-in freed slot 1 for a standby; standbyCount 0 removed it"

dsp pool delete "$POOL" >/dev/null
finish
