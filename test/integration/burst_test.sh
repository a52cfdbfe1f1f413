#!/usr/bin/env bash
# A user added or deleted counts on the instances when the command returns
# (issue 13, point 3), and a burst of logins (point 4): thirty users ssh
# through the pool's front port at the same moment, and every one gets in. Behind the gateway
# they all come from one address; sshd's default MaxStartups (10:30:100)
# drops unauthenticated connections at random once 10 are pending, which
# users meet as "kex_exchange_identification" errors.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_pool_test burst
start_server

USERS=30
FRONT=$(free_port)
ssh_pool_spec "$FRONT" 2 1024 >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null
wait_ready "$POOL" 1
for i in $(seq "$USERS"); do dsp user add "user$i" --ssh-key "$WORK/key.pub" >/dev/null; done

front_ssh() {  # user command...
  local user=$1
  shift
  ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o LogLevel=ERROR -o ConnectTimeout=30 -p "$FRONT" "$user@127.0.0.1" "$@"
}
# Point 3: a change counts when the command returns. The instance knows the
# user the moment `user add` returns: the first login gets in, no retry.
dsp user add late --ssh-key "$WORK/key.pub" >/dev/null
out=$(front_ssh late 'id -un; echo kept >~/mine' 2>&1) || fail "a user's first login right after user add failed: $out"
[[ "$out" == late ]] || fail "the first login after user add ran as '$out'"
dsp user delete late >/dev/null
out=$(front_ssh late true 2>&1) && fail "a deleted user still logged in right after user delete"
grep -q "Permission denied" <<<"$out" || fail "a deleted user's login failed, but not as refused: $out"
pass "user add and user delete counted on the instance when they returned"

# A deleted name comes back only with --restore: the old uid, so the kept
# home is theirs again (a new uid could not even enter it).
out=$(dsp user add late --ssh-key "$WORK/key.pub" 2>&1) && fail "a deleted user's name was simply added again: $out"
grep -q "late --restore" <<<"$out" || fail "re-adding a deleted name was refused without saying what to do: $out"
dsp user add late --restore --ssh-key "$WORK/key.pub" >/dev/null
out=$(front_ssh late 'cd && cat mine' 2>&1) || fail "the restored user cannot read their kept home: $out"
[[ "$out" == kept ]] || fail "the restored user's file reads '$out'"
pass "a plain re-add of a deleted name is refused; --restore gives back the uid and the home"

# All at once: every client is started before any is waited for.
pids=()
for i in $(seq "$USERS"); do
  front_ssh "user$i" 'echo "in as $(id -un)"' >"$WORK/out.$i" 2>"$WORK/err.$i" &
  pids+=($!)
done
failed=0
for i in $(seq "$USERS"); do
  wait "${pids[$((i - 1))]}" || true
  if [[ "$(cat "$WORK/out.$i")" != "in as user$i" ]]; then
    failed=$((failed + 1))
    echo "user$i: $(tr '\n' ' ' <"$WORK/err.$i")" >&2
  fi
done
((failed == 0)) || fail "$failed of $USERS simultaneous logins through the front port failed (errors above)"
pass "$USERS users logged in through the front port at once, every one"

# What made room: the instance's sshd was set for bursts.
config=$(front_ssh dsvmadmin 'sudo -n /usr/sbin/sshd -T -f /etc/ssh/dspool/sshd_config 2>/dev/null | grep -E "^(maxstartups|persourcemaxstartups|logingracetime) "')
grep -qx "maxstartups 256:30:1024" <<<"$config" || fail "the instance's sshd has not the pool's MaxStartups: $config"
pass "the instance's sshd: $(tr '\n' ',' <<<"$config")"
finish
