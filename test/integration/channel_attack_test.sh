#!/usr/bin/env bash
# The instance's root attacks its channel to the host (docs/security.md,
# "The host never follows an instance's path"). For a bounded time, as root
# inside an instance, it swaps every name the server may touch in its
# directories for symlinks to host files, sockets, FIFOs and plain files,
# racing the real control socket back in between; meanwhile the host makes
# the server touch those directories in every way it can: notebook servers
# started, listed and stopped through the agent's control socket, and the
# server restarted (which reopens the channel). Then no watched host file
# has changed owner, mode or content, the server refused what it found
# instead of the socket (counted), every write to the server's read-only
# directory failed (counted), and the channel still works.
DSPOOL=$(realpath "$1")
HERE=$(dirname "$(realpath "$0")")
source "$HERE/lib.sh"
setup_pool_test ca
/usr/bin/python3 -c "import websocket" 2>/dev/null || fail "python3-websocket is missing (scripts/install-deps.sh)"
ATTACK_SECONDS=${ATTACK_SECONDS:-40}
SERVER_ARGS=(--cull-check-seconds 1)
start_server

JP=$(free_port)
cat >"$WORK/spec.json" <<JSON
{"name": "$POOL", "instanceCount": 1,
 "size": {"vcpus": 1, "memoryMiB": 1024},
 "network": {"subnet": "$SUBNET"},
 "share": {"type": "bind", "source": "$WORK/share"},
 "adminUser": {"name": "caadmin", "sshPublicKey": "$(cat "$WORK/key.pub")"},
 "jupyter": {"frontendPort": $JP, "cullIdleMinutes": 60}}
JSON
dsp pool create -f "$WORK/spec.json" >/dev/null
echo 'alice password 1' | dsp user add alice --password-stdin >/dev/null
wait_ready "$POOL" 1
ADDR=$(instance_addresses "$POOL")
INSTANCE=$(first_instance "$POOL")
CHANNEL=$DATA/instances/$INSTANCE
client() { /usr/bin/python3 "$HERE/jupyter_client.py" "https://127.0.0.1:$JP" alice 'alice password 1' "$@"; }
client get /user/alice/api/status >/dev/null || fail "no notebook server before the attack"

# Host files the attacker points its links at, and what the server owns.
CANARY=$WORK/canary
echo "host root's file" >"$CANARY"
chmod 600 "$CANARY"
WATCHED=("$CANARY" /etc/passwd /etc/shadow /etc/sudoers /etc/subuid /etc/ssh/sshd_config "$DATA" "$DATA/api.sock"
         "$DATA/state.db" "$DATA/pools/$POOL" "$DATA/pools/$POOL/ssh_host_ed25519_key" "$DATA/instances" "$CHANNEL"
         "$CHANNEL/server" "$CHANNEL/server/agent.sock")
snapshot() {  # owner, mode and type of each; the content too of those the server does not write
  local f
  for f in "${WATCHED[@]}"; do
    if [[ -f $f && $f != "$DATA"/* ]]; then
      echo "$(stat -c '%n %u:%g %a %F' "$f") $(sha256sum <"$f" | cut -c1-16)"
    else
      stat -c '%n %u:%g %a %F' "$f"
    fi
  done
}
snapshot >"$WORK/before"

# ---- the attacker: root in the instance ----
cat >"$WORK/attack.sh" <<'ATTACK'
#!/bin/bash
# As root in the instance: $1 seconds, host paths to aim at in $2...
end=$((SECONDS + $1)); shift
targets=("$@")
cd /run/dspool/agent || exit 1
ln control.sock real.sock || exit 1   # the agent's socket, kept to race it back in
rounds=0 swaps=0 ro_denied=0 ro_written=0
names=(control.sock agent.log sshd.log jupyter-zygote.log)
while ((SECONDS < end)); do
  for t in "${targets[@]}"; do
    for n in "${names[@]}"; do ln -sfn "$t" "$n.new" && mv -fT "$n.new" "$n" && swaps=$((swaps + 1)); done
    rm -f fifo.sock && mkfifo fifo.sock && mv -fT fifo.sock control.sock && swaps=$((swaps + 1))
    echo decoy >plain.sock && mv -fT plain.sock control.sock && swaps=$((swaps + 1))
    ln -f real.sock control.sock                     # the real socket back for a moment
    # The server's side is out of reach: count the refusals, and any success.
    # (The socket is absent for a moment while the server restarts.)
    for w in "ln -sfn $t /run/dspool/server/agent.sock" "unlink /run/dspool/server/agent.sock" \
             "chmod 666 /run/dspool/server/agent.sock" "touch /run/dspool/server/x" \
             "chmod 777 /run/dspool/server" "mv /run/dspool/agent /run/dspool/a2"; do
      if out=$(sh -c "$w" 2>&1); then ro_written=$((ro_written + 1)); echo "WROTE: $w" >&2
      elif [[ $out == *"Permission denied"* || $out == *"Read-only file system"* || $out == *"Operation not permitted"* || $out == *"busy"* ]]; then
        ro_denied=$((ro_denied + 1))
      elif [[ $out != *"No such file or directory"* ]]; then echo "UNEXPECTED: $w: $out" >&2; fi
    done
  done
  rounds=$((rounds + 1))
done
ln -f real.sock control.sock && rm -f real.sock
rm -f agent.log.new sshd.log.new
echo "rounds=$rounds swaps=$swaps ro_denied=$ro_denied ro_written=$ro_written"
ATTACK
scp -q -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
  "$WORK/attack.sh" "caadmin@$ADDR:/tmp/attack.sh" || fail "could not copy the attack script"
ssh_to caadmin "$ADDR" "sudo -n bash /tmp/attack.sh $ATTACK_SECONDS $CANARY /etc/sudoers /etc/shadow $DATA/api.sock \
  $DATA $CHANNEL/server/agent.sock /etc" >"$WORK/attack.out" 2>"$WORK/attack.err" &
ATTACKER=$!

# ---- meanwhile the host makes the server touch the channel ----
host_rounds=0 restarts=0
while kill -0 "$ATTACKER" 2>/dev/null; do
  # DELETE through the agent, then a login starts a server again (POST);
  # the culler lists them every second (GET).
  dsp session stop alice >/dev/null 2>&1 || true
  client start >/dev/null 2>&1 || true
  host_rounds=$((host_rounds + 1))
  if ((host_rounds % 5 == 0)); then
    stop_server && start_server && restarts=$((restarts + 1))
  fi
done
wait "$ATTACKER" || { cat "$WORK/attack.err"; fail "the attack script failed"; }
read -r stats <"$WORK/attack.out"
echo "attacker: $stats; host: $host_rounds rounds, $restarts server restarts"
[[ -s "$WORK/attack.err" ]] && { cat "$WORK/attack.err"; fail "the attacker wrote where it must not, or failed unexpectedly"; }

# ---- what must hold ----
snapshot >"$WORK/after"
diff "$WORK/before" "$WORK/after" || fail "a host file changed owner, mode or content"
pass "no watched host file changed ($((${#WATCHED[@]})) files)"
[[ $stats =~ rounds=([0-9]+)\ swaps=([0-9]+)\ ro_denied=([0-9]+)\ ro_written=([0-9]+) ]] || fail "no attacker counts: $stats"
rounds=${BASH_REMATCH[1]} swaps=${BASH_REMATCH[2]} denied=${BASH_REMATCH[3]} written=${BASH_REMATCH[4]}
((rounds >= 3 && swaps > 100)) || fail "the attack ran only $rounds rounds, $swaps swaps"
((written == 0 && denied > 0)) || fail "writes to the server's side: $written succeeded, $denied refused"
pass "every write to the server's directory was refused ($denied times)"
refused=$(grep -c "refusing to connect" "$WORK/server.log" || true)
((refused > 0)) || fail "the server never met a swapped control socket (the race was not run)"
pass "the server refused $refused swapped control sockets and followed none"
((restarts > 0)) || fail "the server was never restarted during the attack"

# ---- and the channel still works ----
dsp session stop alice >/dev/null 2>&1 || true
for _ in $(seq 30); do client get /user/alice/api/status 2>/dev/null | grep -qx 200 && break; sleep 1; done
[[ "$(client get /user/alice/api/status)" == 200 ]] || fail "no notebook server after the attack"
[[ "$(stat -c '%u' "$CHANNEL/server/agent.sock")" == "$(stat -c '%u' "$CHANNEL/agent")" ]] \
  || fail "the channel socket does not belong to the instance's root"
pass "after the attack, a notebook server starts through the channel"

dsp pool delete "$POOL" >/dev/null
finish
