#!/usr/bin/env bash
# Bad input gets a clear error naming what and where, and changes nothing.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_pool_test bad
start_server

spec() {  # name subnet source
  cat <<JSON
{"name": "$1", "instanceCount": 0, "network": {"subnet": "$2"},
 "share": {"type": "bind", "source": "$3"},
 "adminUser": {"name": "admin1", "sshPublicKey": "$(cat "$WORK/key.pub")"}}
JSON
}

expect_error() {  # expected-substring command...
  local want=$1; shift
  local out
  if out=$("$@" 2>&1); then fail "expected failure: $*"; fi
  [[ "$out" == *"$want"* ]] || fail "error '$out' does not contain '$want'"
  [[ $(echo "$out" | wc -l) -eq 1 ]] || fail "error is not one line: $out"
}

events_before=$(dsp events -o json --limit 1000 | grep -c '"seq"' || true)

spec "$POOL" "$SUBNET" "$WORK/share" | sed 's/"instanceCount": 0/"instanceCount": "two"/' >"$WORK/s1.json"
expect_error "instanceCount: expected an integer" dsp pool create -f "$WORK/s1.json"
printf '{"name": "x",\n  oops}' >"$WORK/s2.json"
expect_error "line 2" dsp pool create -f "$WORK/s2.json"
spec "$POOL" "$SUBNET" "$WORK/missing" >"$WORK/s3.json"
expect_error "share.source" dsp pool create -f "$WORK/s3.json"
host_route=$(ip -4 route show | awk '$1 ~ /\// {print $1; exit}')
if [[ -n "$host_route" ]]; then
  spec "$POOL" "$host_route" "$WORK/share" >"$WORK/s4.json"
  expect_error "collides with the host route" dsp pool create -f "$WORK/s4.json"
fi
expect_error "does not exist" dsp user delete nosuchuser
expect_error "does not exist" dsp pool scale nosuchpool --count 1
[[ -z "$(dsp pool list -o json | grep '"name"' || true)" ]] || fail "a pool was created by bad input"
events_after=$(dsp events -o json --limit 1000 | grep -c '"seq"' || true)
[[ "$events_before" == "$events_after" ]] || fail "bad input recorded events"
pass "invalid specs change nothing"

spec "$POOL" "$SUBNET" "$WORK/share" >"$WORK/ok.json"
dsp pool create -f "$WORK/ok.json" >/dev/null
expect_error "already exists" dsp pool create -f "$WORK/ok.json"
other_subnet=$(echo "$SUBNET" | sed 's#/24#/25#')
spec "other" "$other_subnet" "$WORK/share" >"$WORK/s5.json"
expect_error "overlaps pool '$POOL'" dsp pool create -f "$WORK/s5.json"
expect_error "must be between 0" dsp pool scale "$POOL" --count 1000
pass "duplicate pool, overlapping subnet and bad count are refused"

dsp pool delete "$POOL" >/dev/null
for i in $(seq 60); do dsp pool show "$POOL" >/dev/null 2>&1 || break; sleep 0.5; done
out=$(dsp pool show "$POOL" 2>&1) && fail "pool $POOL still exists after delete"
[[ "$out" == *"does not exist"* ]] || fail "pool show after delete failed, but not as not found: $out"
pass "the valid pool is deleted"

# A cookie key that is not one stops the server with the file's name; it is
# never silently replaced (every browser would be logged out).
stop_server
cp "$DATA/session.key" "$WORK/session.key.good"
echo junk >"$DATA/session.key"
out=$("$DSPOOL" server --data-dir "$DATA" 2>&1) && fail "the server started with a broken session.key"
[[ "$out" == *"$DATA/session.key: not a session key (64 hex digits); remove it"* ]] \
  || fail "a broken session.key was refused without naming it: $out"
[[ "$(cat "$DATA/session.key")" == junk ]] || fail "the broken session.key was changed"
chmod 644 "$DATA/session.key"
out=$("$DSPOOL" server --data-dir "$DATA" 2>&1) && fail "the server started with a world-readable session.key"
[[ "$out" == *"session.key"* ]] || fail "a world-readable session.key was refused without naming it: $out"
pass "a broken or readable session.key stops the server, named, unchanged"
finish
