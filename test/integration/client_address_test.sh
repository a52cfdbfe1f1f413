#!/usr/bin/env bash
# Clients' addresses (issue 13, point 6) on real LXC and sshd: a client in
# its own network namespace, behind a veth to the host, logs in through the
# pool's front port and the instance's sshd sees the client's own address
# (the gateway connects from it: IP_TRANSPARENT and the host's transparent
# routing). A loopback client cannot lend its address: the instance sees
# the host's address on the pool's bridge, and the gateway logs the mapping
# and `dspool session list` shows it (client, and the address:port the
# instance sees), so an admin can match sshd's log line.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_pool_test caddr
command -v ip >/dev/null || cannot_run_here "iproute2 is not installed (scripts/install-deps.sh)"
[[ -x /usr/sbin/nft ]] || cannot_run_here "nftables is not installed (scripts/install-deps.sh)"

# The client's network: namespace $NS, a veth $HOST_END (host) / $NS_END
# (namespace) on a /30 of 10.250.0.0/16 that nothing on the host uses.
NS="${POOL}c"
HOST_END="${POOL}h"
NS_END="${POOL}n"
client_cleanup() {
  [[ -n "${SSH_PIDS:-}" ]] && kill $SSH_PIDS 2>/dev/null
  ip link del "$HOST_END" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  cleanup
}
trap client_cleanup EXIT
CLIENT_NET=""
for x in $(shuf -i 1-250 -n 50); do
  y=$(( (RANDOM % 64) * 4 ))
  if ! grep -q "^10\.250\.$x\." <<<"$(ip -4 route show)" && ! grep -q " 10\.250\.$x\." <<<"$(ip -4 addr show)"; then
    CLIENT_NET="10.250.$x"
    break
  fi
done
[[ -n "$CLIENT_NET" ]] || fail "no free /30 in 10.250.0.0/16"
HOST_ADDR="$CLIENT_NET.$((y + 1))"
CLIENT_ADDR="$CLIENT_NET.$((y + 2))"
ip netns add "$NS"
ip link add "$HOST_END" type veth peer name "$NS_END" netns "$NS"
ip addr add "$HOST_ADDR/30" dev "$HOST_END"
ip link set "$HOST_END" up
ip -n "$NS" addr add "$CLIENT_ADDR/30" dev "$NS_END"
ip -n "$NS" link set "$NS_END" up
ip -n "$NS" link set lo up
pass "client namespace $NS at $CLIENT_ADDR, host end $HOST_ADDR"

start_server
if grep -q "instances will see the bridge's address" "$WORK/server.log"; then
  reason=$(grep "instances will see the bridge's address" "$WORK/server.log" | head -1)
  if grep -qiE "socket|No such file|not supported" <<<"$reason"; then
    cannot_run_here "the host cannot route answers to transparent sockets: $reason"
  fi
  fail "the server could not set up transparent routing: $reason"
fi
mark=$(printf '%d' 0x6473)
# (Into variables first: `grep -q` leaves a pipe early, which pipefail
# would take for the lister's failure.)
rules=$(ip rule list)
grep -qE "^$mark:.*fwmark 0x6473 lookup $mark" <<<"$rules" || fail "no rule for marked packets: $rules"
routes=$(ip route show table "$mark")
grep -q "^local default dev lo" <<<"$routes" || fail "no local route in table $mark: $routes"
chain=$(nft list chain inet dspool prerouting)
grep -q "socket transparent 1" <<<"$chain" || fail "no nft rule marking transparent answers: $chain"
pass "the host's transparent routing: rule $mark, table $mark, nft prerouting"

FRONT=$(free_port)
ssh_pool_spec "$FRONT" 1 512 >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null
wait_ready "$POOL" 1
BRIDGE_ADDR=$(/usr/bin/python3 -c "import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1])[1])" "$SUBNET")

# An SSH login through the front port, kept open: from `where` ("ns" or
# "lo"), it prints $SSH_CLIENT into $WORK/NAME.out and waits (the test
# kills the client).
SSH_PIDS=""
login() {  # name where
  local cmd=(ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
             -o LogLevel=ERROR -o ConnectTimeout=30 -p "$FRONT")
  if [[ $2 == ns ]]; then
    cmd=(ip netns exec "$NS" "${cmd[@]}" "dsvmadmin@$HOST_ADDR")
  else
    cmd=("${cmd[@]}" "dsvmadmin@127.0.0.1")
  fi
  "${cmd[@]}" 'echo "$SSH_CLIENT"; exec sleep 600' </dev/null >"$WORK/$1.out" 2>"$WORK/$1.err" &
  SSH_PIDS="$SSH_PIDS $!"
  wait_until 60 "the $1 login prints SSH_CLIENT" test -s "$WORK/$1.out"
}
# The ssh entries of `session list -o json`: "client seen transparent" lines.
ssh_sessions() {
  dsp session list -o json | /usr/bin/python3 -c "
import json, sys
for s in json.load(sys.stdin)['sessions']:
    if s.get('kind') == 'ssh': print(s['client'], s['instanceSees'], str(s['transparent']).lower(), s['instance'])"
}

# ---- a client with an address of its own: the instance sees it ----
login ns ns
read -r seen_ip seen_port _ <"$WORK/ns.out"
[[ "$seen_ip" == "$CLIENT_ADDR" ]] || fail "the instance saw $seen_ip, not the client's $CLIENT_ADDR (SSH_CLIENT: $(cat "$WORK/ns.out"))"
pass "the instance's sshd sees the client's own address ($seen_ip, SSH_CLIENT)"
ssh_sessions >"$WORK/sessions"
grep -qE "^$CLIENT_ADDR:[0-9]+ $CLIENT_ADDR:$seen_port true " "$WORK/sessions" \
  || fail "session list has no transparent session from $CLIENT_ADDR seen at port $seen_port: $(cat "$WORK/sessions")"
pass "session list: $(grep "^$CLIENT_ADDR" "$WORK/sessions")"
# sshd's own log on the instance: the login came from the client.
sshd_log() {
  ip netns exec "$NS" ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ConnectTimeout=30 -p "$FRONT" "dsvmadmin@$HOST_ADDR" \
    'sudo -n grep -h "Accepted publickey for dsvmadmin" /run/dspool/agent/sshd.log' </dev/null
}
sshd_log >"$WORK/sshd.log" || fail "cannot read the instance's sshd log"
grep -q "from $CLIENT_ADDR port $seen_port " "$WORK/sshd.log" \
  || fail "sshd did not log the login from $CLIENT_ADDR port $seen_port: $(cat "$WORK/sshd.log")"
grep -q "from $BRIDGE_ADDR " "$WORK/sshd.log" && fail "sshd logged a login from the bridge $BRIDGE_ADDR: $(cat "$WORK/sshd.log")"
pass "the instance's sshd logged: $(grep "from $CLIENT_ADDR port $seen_port " "$WORK/sshd.log")"

# ---- a loopback client: the bridge's address, and the mapping shown ----
login lo lo
read -r seen_ip seen_port _ <"$WORK/lo.out"
[[ "$seen_ip" == "$BRIDGE_ADDR" ]] || fail "a loopback client was seen as $seen_ip, not the bridge's $BRIDGE_ADDR"
pass "a loopback client is seen as the bridge's address $BRIDGE_ADDR:$seen_port"
ssh_sessions >"$WORK/sessions"
grep -qE "^127\.0\.0\.1:[0-9]+ $BRIDGE_ADDR:$seen_port false " "$WORK/sessions" \
  || fail "session list does not map 127.0.0.1 to $BRIDGE_ADDR:$seen_port: $(cat "$WORK/sessions")"
pass "session list: $(grep "^127\.0\.0\.1" "$WORK/sessions")"
table=$(dsp session list)
grep -qE "^ssh +$POOL +- +[^ ]+ +127\.0\.0\.1:[0-9]+ +$BRIDGE_ADDR:$seen_port +open" <<<"$table" \
  || fail "the session table does not show the loopback login: $table"
pass "the session table shows the loopback login with the address the instance sees"
grep -qE "client 127\.0\.0\.1:[0-9]+ → instance .*which sees it as $BRIDGE_ADDR:$seen_port" "$WORK/server.log" \
  || fail "the server did not log the loopback client's mapping"
pass "the gateway logged the mapping 127.0.0.1 → $BRIDGE_ADDR:$seen_port"
sshd_log >"$WORK/sshd.log" || fail "cannot read the instance's sshd log"
grep -q "from $BRIDGE_ADDR port $seen_port " "$WORK/sshd.log" \
  || fail "sshd's log has no line for $BRIDGE_ADDR port $seen_port to match the mapping: $(cat "$WORK/sshd.log")"
pass "sshd's log line matches the mapping: $(grep "from $BRIDGE_ADDR port $seen_port " "$WORK/sshd.log")"

# Closed sessions leave the list.
kill $SSH_PIDS 2>/dev/null || true
SSH_PIDS=""
wait_until 30 "the closed logins leave the session list" test -z "$(ssh_sessions)"
pass "closed logins leave the session list"
finish
