#!/usr/bin/env bash
# The pool's one address on real LXC and sshd: SSH through the frontend port
# with one host key, NAT-pool ports to named instances, SourceIP affinity
# across a scale-in, probe failover with an open session untouched, drain,
# wake from zero by a plain ssh, and bad load-balancer specs refused.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_pool_test gw
start_server

FRONT=$(free_port)
NAT=$(free_port)
while (( NAT + 3 > PORT_MAX )) || ss -Htan | awk '{print $4}' | grep -qE ":($NAT|$((NAT+1))|$((NAT+2))|$((NAT+3)))\$"; do
  NAT=$(free_port)
done

lb_spec() {  # name subnet count frontPort natStart natEnd
  cat <<JSON
{"name": "$1", "instanceCount": $3,
 "size": {"vcpus": 1, "memoryMiB": 512},
 "network": {"subnet": "$2"},
 "share": {"type": "bind", "source": "$WORK/share"},
 "adminUser": {"name": "dsvmadmin", "sshPublicKey": "$(cat "$WORK/key.pub")"},
 "loadBalancer": {
   "rules": [{"name": "SSH", "frontendPort": $4, "backendPort": 22, "probe": "ssh",
              "loadDistribution": "SourceIP"}],
   "probes": [{"name": "ssh", "protocol": "Tcp", "port": 22, "intervalInSeconds": 5, "numberOfProbes": 2}],
   "inboundNatPools": [{"name": "ssh-nat", "frontendPortRangeStart": $5, "frontendPortRangeEnd": $6,
                        "backendPort": 22}]}}
JSON
}

# ssh through the gateway: port, then the command; -b picks the client's
# source address (127.0.0.x), which SourceIP affinity hashes.
gw_ssh() {  # port source cmd...
  local port=$1 src=$2; shift 2
  ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile="$WORK/known_hosts" \
      -o LogLevel=ERROR -o ConnectTimeout=10 -b "$src" -p "$port" dsvmadmin@127.0.0.1 "$@"
}

# Instance health from the API: "healthy"... for index $2 of pool $1.
health_of() {
  dsp instance list --pool "$1" -o json | python_json "
for i in data['instances']:
    if i['index'] == $2: print(i.get('health', {}).get('state', 'none'))"
}
wait_health() {  # pool index state seconds
  local i
  for i in $(seq $(( $4 * 10 ))); do
    [[ "$(health_of "$1" "$2")" == "$3" ]] && return 0
    sleep 0.1
  done
  dsp pool show "$1" || true
  fail "instance $2 of $1 not $3 after $4 s (is: $(health_of "$1" "$2"))"
}
hostname_of() {  # index
  echo "$POOL$1"
}
# Whether the kernel keeps PORT out of its ephemeral range.
port_reserved() {  # port
  local part
  for part in $(tr ',' ' ' </proc/sys/net/ipv4/ip_local_reserved_ports); do
    (( $1 >= ${part%-*} && $1 <= ${part#*-} )) && return 0
  done
  return 1
}
elapsed() { awk "BEGIN { printf \"%.1f\", $2 - $1 }"; }

# ---- bad load-balancer specs change nothing ----
lb_spec "$POOL" "$SUBNET" 5 "$FRONT" "$NAT" $((NAT + 3)) >"$WORK/too-many.json"
out=$(dsp pool create -f "$WORK/too-many.json" 2>&1) && fail "5 instances on a NAT range of 4 accepted"
grep -q "inboundNatPools" <<<"$out" || fail "NAT range error does not name the field: $out"
busy=$(free_port)
/usr/bin/python3 -c "import socket,time,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', $busy)); s.listen(); time.sleep(60)" &
BUSY_PID=$!
trap 'kill $BUSY_PID 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 50); do ss -Htln "sport = :$busy" | grep -q . && break; sleep 0.1; done
lb_spec "$POOL" "$SUBNET" 2 "$busy" "$NAT" $((NAT + 3)) >"$WORK/busy.json"
out=$(dsp pool create -f "$WORK/busy.json" 2>&1) && fail "a frontend port in use accepted"
grep -q "frontendPort" <<<"$out" && grep -qi "in use" <<<"$out" || fail "port-in-use error unclear: $out"
kill $BUSY_PID 2>/dev/null || true
[[ -z "$(dsp pool list -o json | grep -o "\"$POOL\"" || true)" ]] || fail "a refused spec left a pool"
pass "NAT range too small and port in use refused, naming the field"

# ---- a pool of 3 behind one address ----
lb_spec "$POOL" "$SUBNET" 3 "$FRONT" "$NAT" $((NAT + 3)) >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null
wait_ready "$POOL" 3
for port in "$FRONT" "$NAT" $((NAT + 3)); do
  port_reserved "$port" || fail "port $port is not kept out of the ephemeral range: $(cat /proc/sys/net/ipv4/ip_local_reserved_ports)"
done
pass "the frontend and NAT ports are reserved from the kernel's ephemeral range"
for k in 0 1 2; do wait_health "$POOL" $k healthy 30; done
pass "3 instances healthy behind 0.0.0.0:$FRONT"

OTHER_SUBNET=$(free_subnet)
lb_spec "other$RANDOM" "$OTHER_SUBNET" 1 "$FRONT" $((NAT + 10)) $((NAT + 11)) >"$WORK/overlap.json"
out=$(dsp pool create -f "$WORK/overlap.json" 2>&1) && fail "a second pool on the same frontend port accepted"
grep -q "collides" <<<"$out" || fail "overlap error unclear: $out"
pass "a second pool on the same port is refused: $out"

for k in 0 1 2; do
  got=$(gw_ssh $((NAT + k)) 127.0.0.1 hostname) || fail "NAT port $((NAT + k)) does not answer"
  [[ "$got" == "$(hostname_of $k)" ]] || fail "NAT port $((NAT + k)) reached $got, not instance $k"
done
refused_total() {
  curl -s --unix-socket "$DATA/api.sock" http://x/metrics | awk '$1 == "dspool_gateway_refused_total" {print $2}'
}
refused_before=$(refused_total)
out=$(gw_ssh $((NAT + 3)) 127.0.0.1 hostname 2>&1) && fail "NAT slot 3 (no instance) answered: $out"
[[ "$out" == *"Connection closed"* || "$out" == *"Connection reset"* ]] \
  || fail "NAT slot 3 (no instance) failed, but was not closed by the gateway: $out"
(( $(refused_total) > ${refused_before:-0} )) || fail "the gateway did not count NAT slot 3's connection as refused"
pass "NAT ports $NAT-$((NAT + 2)) reach instances 0-2; the empty slot is closed"

# One host key at every port.
keys=$(awk '{print $3}' "$WORK/known_hosts" | sort -u | wc -l)
[[ "$keys" == 1 ]] || fail "expected one host key across NAT ports, saw $keys"

# SourceIP: each client address sticks to one instance.
declare -A WHERE
for s in $(seq 2 13); do
  src=127.0.0.$s
  WHERE[$src]=$(gw_ssh "$FRONT" "$src" hostname) || fail "ssh through the frontend from $src failed"
  again=$(gw_ssh "$FRONT" "$src" hostname)
  [[ "$again" == "${WHERE[$src]}" ]] || fail "client $src moved from ${WHERE[$src]} to $again"
done
spread=$(printf '%s\n' "${WHERE[@]}" | sort -u | wc -l)
(( spread >= 2 )) || fail "12 client addresses all landed on one instance"
pass "SourceIP: 12 clients over $spread instances, each sticks"

# Scale-in removes instance 2; the clients of 0 and 1 keep their instance.
dsp pool scale "$POOL" --count 2 >/dev/null
wait_ready "$POOL" 2
moved=0
for src in "${!WHERE[@]}"; do
  [[ "${WHERE[$src]}" == "$(hostname_of 2)" ]] && continue
  now=$(gw_ssh "$FRONT" "$src" hostname)
  [[ "$now" == "${WHERE[$src]}" ]] || moved=$((moved + 1))
done
(( moved == 0 )) || fail "$moved clients moved though their instance stayed"
pass "scale-in 3 → 2: no client of a remaining instance moved"

# ---- probe failover: new sessions leave a broken instance, open ones stay ----
X=$(gw_ssh "$FRONT" 127.0.0.1 hostname)
if [[ "$X" == "$(hostname_of 0)" ]]; then XI=0; YI=1; else XI=1; YI=0; fi
# A client address that lands on the other instance, for a long session
# (the 12 above may all have missed it: hashing is per run's instance ids).
for s in $(seq 2 60); do
  [[ -n "${WHERE[127.0.0.$s]:-}" ]] || WHERE[127.0.0.$s]=$(gw_ssh "$FRONT" "127.0.0.$s" hostname) || fail "ssh from 127.0.0.$s failed"
  [[ "${WHERE[127.0.0.$s]}" == "$(hostname_of $YI)" ]] && { YSRC=127.0.0.$s; break; }
done
[[ -n "${YSRC:-}" ]] || fail "none of 59 client addresses maps to instance $YI"
# The session waits for a line from us (its stdin, a FIFO), so it spans
# the failover however long that takes.
mkfifo "$WORK/session.in"
gw_ssh "$FRONT" "$YSRC" 'echo session-open; read -r line; echo "session-survived $line"' \
  <"$WORK/session.in" >"$WORK/session.out" 2>&1 &
SESSION=$!
exec 7>"$WORK/session.in"
session_open() { grep -q session-open "$WORK/session.out"; }
wait_until 30 "the long session on instance $YI open" session_open
# sshd of instance X stops taking new connections from the host for 25 s
# (open ones go on; its own agent still sees sshd). The instance lifts the
# block itself, since the block also closes its NAT port.
HOST_ADDR=${SUBNET%.0/24}.1
gw_ssh $((NAT + XI)) 127.0.0.1 'sudo sh -c '"'"'nft add table inet t && nft add chain inet t in "{ type filter hook input priority 0; }" && nft add rule inet t in ip saddr '"$HOST_ADDR"' tcp dport 22 ct state new reject && (nohup sh -c "sleep 25; nft delete table inet t" >/dev/null 2>&1 &)'"'" \
  || fail "cannot block sshd in instance $XI"
t0=$(date +%s.%N)
wait_health "$POOL" $XI unhealthy 20
t1=$(date +%s.%N)
got=$(gw_ssh "$FRONT" 127.0.0.1 hostname) || fail "ssh through the frontend failed after instance $XI went down"
[[ "$got" == "$(hostname_of $YI)" ]] || fail "new session went to $got, not the healthy instance $YI"
kill -0 $SESSION 2>/dev/null || fail "the open session on instance $YI ended: $(cat "$WORK/session.out")"
trap '' PIPE  # a session gone meanwhile: an error from echo, not the end of this script
echo after-failover >&7 || fail "the open session on instance $YI ended: $(cat "$WORK/session.out")"
trap - PIPE
exec 7>&-
wait $SESSION || fail "the open session on instance $YI failed: $(cat "$WORK/session.out")"
grep -qx "session-survived after-failover" "$WORK/session.out" || fail "open session output lost: $(cat "$WORK/session.out")"
pass "instance $XI out of rotation $(elapsed "$t0" "$t1") s after sshd stopped (interval 5 s x 2); new sessions go to $YI; the open session lived"
wait_health "$POOL" $XI healthy 40

# ---- drain ----
dsp instance drain "$(dsp instance list --pool "$POOL" -o json | python_json "
for i in data['instances']:
    if i['index'] == $YI: print(i['id'])")" >/dev/null
for _ in $(seq 5); do
  got=$(gw_ssh "$FRONT" "$YSRC" hostname)
  [[ "$got" == "$(hostname_of $XI)" ]] || fail "a draining instance got a new session ($got)"
done
pass "a draining instance gets no new sessions"

# ---- scale to zero, then a plain ssh wakes the pool ----
dsp pool scale "$POOL" --count 0 >/dev/null
wait_ready "$POOL" 0
t0=$(date +%s.%N)
got=$(ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile="$WORK/known_hosts" \
          -o LogLevel=ERROR -p "$FRONT" dsvmadmin@127.0.0.1 hostname) || fail "ssh from zero failed"
t1=$(date +%s.%N)
[[ "$got" == "$POOL"[0-9]* ]] || fail "ssh from zero reached '$got'"
dsp events | grep -q "pool.wake" || fail "no pool.wake event"
metrics=$(curl -s --unix-socket "$DATA/api.sock" http://x/metrics)
grep -q '^dspool_gateway_wake_requests_total [1-9]' <<<"$metrics" || fail "wake requests not counted"
grep -q '^dspool_gateway_connections_relayed_total [1-9]' <<<"$metrics" || fail "relayed connections not counted"
pass "ssh to a pool at zero woke it and landed on $got after $(elapsed "$t0" "$t1") s"

dsp pool delete "$POOL" >/dev/null
for _ in $(seq 100); do ss -Htln "sport = :$FRONT" | grep -q . || break; sleep 0.2; done
ss -Htln "sport = :$FRONT" | grep -q . && fail "frontend port still open after the pool was deleted"
port_reserved "$FRONT" && fail "port $FRONT is still reserved after the pool was deleted"
port_reserved "$NAT" && fail "port $NAT is still reserved after the pool was deleted"
pass "deleting the pool closes its ports and gives them back to the ephemeral range"
finish
