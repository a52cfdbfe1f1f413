#!/usr/bin/env bash
# A pool of 2 on real LXC and sshd: one identity and the same files on every
# instance, one host key, scaling, kill -9 of the server mid scale-out, and a
# delete that leaves nothing behind.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_pool_test it
ssh-keygen -q -t ed25519 -N "" -C "it alice" -f "$WORK/alice"
start_server
cat >"$WORK/spec.json" <<JSON
{"name": "$POOL", "instanceCount": 2,
 "size": {"vcpus": 1, "memoryMiB": 512},
 "network": {"subnet": "$SUBNET"},
 "share": {"type": "bind", "source": "$WORK/share"},
 "adminUser": {"name": "dsvmadmin", "sshPublicKey": "$(cat "$WORK/key.pub")"}}
JSON
dsp pool create -f "$WORK/spec.json" >/dev/null
wait_ready "$POOL" 2
pass "pool of 2 is ready"

mapfile -t ADDR < <(instance_addresses "$POOL")
[[ ${#ADDR[@]} -eq 2 ]] || fail "expected 2 addresses, got ${ADDR[*]}"

# A user added after the pool exists gets in everywhere, with the same uid.
dsp user add alice --ssh-key "$WORK/alice.pub" >/dev/null
ssh_alice() { ssh -i "$WORK/alice" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
                  -o LogLevel=ERROR -o ConnectTimeout=10 "alice@$1" "${@:2}"; }
for i in $(seq 40); do ssh_alice "${ADDR[0]}" true 2>/dev/null && break; sleep 0.5; done
ssh_alice "${ADDR[0]}" 'echo "from $(hostname)" > ~/notebooks/remote/x' || fail "alice cannot write on instance 0"
got=$(ssh_alice "${ADDR[1]}" 'cat ~/notebooks/remote/x')
[[ "$got" == "from ${POOL}0" ]] || fail "instance 1 read '$got', expected 'from ${POOL}0'"
pass "a file written on instance 0 is read on instance 1"

uid0=$(ssh_alice "${ADDR[0]}" 'id -u')
uid1=$(ssh_alice "${ADDR[1]}" 'id -u')
[[ "$uid0" == "$uid1" ]] || fail "uid differs: $uid0 vs $uid1"
host_uid=$(stat -c %u "$WORK/share/notebooks/alice/x")
[[ "$host_uid" == "$uid0" ]] || fail "owner on the share is $host_uid, expected $uid0"
mode=$(stat -c %a "$WORK/share/notebooks/alice")
[[ "$mode" == "700" ]] || fail "notebooks/alice has mode $mode, expected 700"
pass "uid $uid0 on both instances and on the share"

k0=$(ssh-keyscan -t ed25519 "${ADDR[0]}" 2>/dev/null | awk '{print $3}')
k1=$(ssh-keyscan -t ed25519 "${ADDR[1]}" 2>/dev/null | awk '{print $3}')
[[ -n "$k0" && "$k0" == "$k1" ]] || fail "host keys differ or are missing"
key_mode=$(stat -c %a "$DATA/pools/$POOL/ssh_host_ed25519_key")
[[ "$key_mode" == "600" ]] || fail "pool host key has mode $key_mode"
pass "one host key for the pool"

# A second server on the same host leaves this pool's network alone.
"$DSPOOL" server --data-dir "$WORK/data2" >>"$WORK/server2.log" 2>&1 &
second=$!
second_passes() {  # reconcile passes the second server has finished
  curl -s --unix-socket "$WORK/data2/api.sock" http://x/metrics | awk '$1 == "dspool_reconcile_passes_total" {print $2}'
}
second_reconciled() {
  kill -0 "$second" 2>/dev/null || { cat "$WORK/server2.log"; fail "the second server exited"; }
  local passes
  passes=$(second_passes)
  (( ${passes:-0} >= 2 ))
}
wait_until 60 "two reconcile passes of the second server" second_reconciled
kill -TERM "$second"; wait "$second" || true
DATA=$WORK/data2 stop_gateway  # the second server's gateway outlives it
ports=$(ls "/sys/class/net/dsp-$POOL/brif" 2>/dev/null | wc -l)
[[ "$ports" -eq 2 ]] || fail "the pool's bridge has $ports ports after a second server ran (expected 2)"
ssh_to dsvmadmin "${ADDR[1]}" true || fail "instance 1 unreachable after a second server ran"
pass "a second server does not touch this pool's network"

# A removed key stops working at once, on every instance.
fp=$(ssh-keygen -lf "$WORK/alice.pub" | awk '{print $2}')
dsp user key remove alice "$fp" >/dev/null
if out=$(ssh_alice "${ADDR[1]}" true 2>&1); then fail "removed key still accepted"; fi
[[ "$out" == *"Permission denied (publickey"* ]] || fail "ssh with a removed key failed, but not as refused: $out"
pass "key removal takes effect at once"

ssh_to dsvmadmin "${ADDR[0]}" true || fail "admin cannot log in"

# Password login checks the same yescrypt hash on every instance; the
# password travels on stdin and in SSHPASS, never in argv.
printf 'correct horse battery\n' | dsp user passwd alice --password-stdin >/dev/null
ssh_pw() {  # password address
  SSHPASS=$1 sshpass -e ssh -o PubkeyAuthentication=no -o PreferredAuthentications=password \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 \
    "alice@$2" true
}
for i in $(seq 20); do ssh_pw 'correct horse battery' "${ADDR[1]}" 2>/dev/null && break; sleep 0.5; done
ssh_pw 'correct horse battery' "${ADDR[1]}" || fail "password login failed"
if out=$(ssh_pw 'wrong horse battery' "${ADDR[0]}" 2>&1); then fail "a wrong password was accepted"; fi
[[ "$out" == *"Permission denied"* ]] || fail "ssh with a wrong password failed, but not as refused: $out"
pass "password login with the pool's hash"

dsp pool scale "$POOL" --count 3 >/dev/null
wait_ready "$POOL" 3
dsp pool scale "$POOL" --count 1 >/dev/null
wait_ready "$POOL" 1
pass "scaled 2 → 3 → 1"

# kill -9 during a scale-out, restart, converge with no duplicate and no orphan.
dsp pool scale "$POOL" --count 4 >/dev/null
scale_out_begun() { (( $(ls "$DATA/lxc/containers" | wc -l) > 1 )); }  # a new container is being made
wait_until 60 "the scale-out making a container" scale_out_begun
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
start_server
wait_ready "$POOL" 4
n_containers=$(ls "$DATA/lxc/containers" | wc -l)
[[ "$n_containers" -eq 4 ]] || fail "expected 4 containers after restart, found $n_containers: $(ls "$DATA/lxc/containers")"
n_running=$(for c in $(ls "$DATA/lxc/containers"); do lxc-info -P "$DATA/lxc/containers" -n "$c" -s; done | grep -c RUNNING)
[[ "$n_running" -eq 4 ]] || fail "expected 4 running containers, found $n_running"
pass "kill -9 mid scale-out: converged to 4, no duplicate, no orphan"

# `dspool server stop` returns once the server is gone; the instances stay.
# The key that signs Jupyter cookies is the same after a restart.
[[ "$(stat -c '%U %a' "$DATA/session.key")" == "root 600" ]] || fail "session.key is not root's 0600: $(stat -c '%U %a' "$DATA/session.key")"
key_before=$(sha256sum <"$DATA/session.key")
out=$("$DSPOOL" server stop --data-dir "$DATA") || fail "dspool server stop failed: $out"
grep -q "stopped" <<<"$out" || fail "dspool server stop said: $out"
wait "$SERVER_PID" || fail "the server stopped by request exited with an error: $(tail -5 "$WORK/server.log")"
SERVER_PID=""
n_running=$(for c in $(ls "$DATA/lxc/containers"); do lxc-info -P "$DATA/lxc/containers" -n "$c" -s; done | grep -c RUNNING)
[[ "$n_running" -eq 4 ]] || fail "dspool server stop took instances with it: $n_running of 4 running"
start_server
wait_ready "$POOL" 4
[[ "$(sha256sum <"$DATA/session.key")" == "$key_before" ]] || fail "a restart made a new cookie key: every browser would log in again"
pass "dspool server stop: the server exited cleanly, the instances kept running, a new server took them up with the same cookie key"

dsp pool delete "$POOL" >/dev/null
for i in $(seq 120); do dsp pool show "$POOL" >/dev/null 2>&1 || break; sleep 0.5; done
dsp pool show "$POOL" >/dev/null 2>&1 && fail "pool still exists after delete"
# The server's sweep removes the instances' channel directories.
for _ in $(seq 150); do [[ -z "$(leftovers "$POOL")" ]] && break; sleep 0.2; done
left=$(leftovers "$POOL")
[[ -z "$left" ]] || fail "left behind after delete: $left"
[[ -f "$WORK/share/notebooks/alice/x" ]] || fail "user files on the share were lost"
pass "delete leaves nothing behind and keeps the share"

dsp events --limit 1000 >"$WORK/events.txt"
for action in pool.create user.create instance.ready pool.scale pool.delete pool.deleted; do
  grep -q "$action" "$WORK/events.txt" || fail "no $action event"
done
pass "events recorded"
finish
