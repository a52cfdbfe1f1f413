#!/usr/bin/env bash
# Instances isolated like VMs (docs/security.md): root inside an instance is
# no host root; the host, the server and other pools are out of its reach;
# limits hold; pools cannot reach each other or the host.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_pool_test is
OTHER="ot$RANDOM"
OTHER=${OTHER:0:8}
trap 'cleanup; ip link del "dsp-$OTHER" 2>/dev/null || true' EXIT
mkdir -p "$WORK/othershare"
echo "other pool's secret" >"$WORK/othershare/secret"
chmod 644 "$WORK/othershare/secret"
start_server

spec() {  # name subnet share count
  cat <<JSON
{"name": "$1", "instanceCount": $4, "size": {"vcpus": 1, "memoryMiB": 256, "maxProcesses": 256},
 "network": {"subnet": "$2"}, "share": {"type": "bind", "source": "$3"},
 "adminUser": {"name": "isoadmin", "sshPublicKey": "$(cat "$WORK/key.pub")"}}
JSON
}
spec "$POOL" "$SUBNET" "$WORK/share" 2 >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null
SUBNET2=$(free_subnet)
[[ "$SUBNET2" != "$SUBNET" ]] || SUBNET2=$(free_subnet)
spec "$OTHER" "$SUBNET2" "$WORK/othershare" 1 >"$WORK/other.json"
dsp pool create -f "$WORK/other.json" >/dev/null
wait_ready "$POOL" 2
wait_ready "$OTHER" 1
mapfile -t ADDR < <(instance_addresses "$POOL")
OTHER_ADDR=$(instance_addresses "$OTHER")
as_root() { ssh_to isoadmin "${ADDR[0]}" "sudo -n sh -c '$1'" 2>&1; }

[[ "$(as_root 'id -u')" == "0" ]] || fail "the admin has no sudo: $(as_root 'id -u')"
host_uid=$(as_root 'cat /proc/self/uid_map' | awk '{print $2}')
[[ "$host_uid" -ge 1000000 ]] || fail "instance root is host uid $host_uid"
ssh-keygen -q -t ed25519 -N "" -C "iso bob" -f "$WORK/bob"
dsp user add bob --ssh-key "$WORK/bob.pub" >/dev/null
ssh_bob() { ssh -i "$WORK/bob" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
                -o LogLevel=ERROR -o ConnectTimeout=10 "bob@${ADDR[0]}" "$@"; }
for _ in $(seq 40); do ssh_bob true 2>/dev/null && break; sleep 0.5; done
ssh_bob true || fail "bob cannot log in"
if ssh_bob 'sudo -n true' 2>/dev/null; then fail "a user who is not an admin has sudo"; fi
pass "sudo works for the admin only; instance root is host uid $host_uid"

must_fail() {  # description, command run as instance root
  local out
  if out=$(ssh_to isoadmin "${ADDR[0]}" "sudo -n sh -c '$2'" 2>&1); then fail "$1 succeeded: $out"; fi
}
must_fail "reading the server's data dir" "cat $DATA/state.db"
must_fail "reading a pool host key" "cat $DATA/pools/$POOL/ssh_host_ed25519_key"
must_fail "reading the host's SSH host key" "cat /etc/ssh/ssh_host_ed25519_key"
must_fail "reading another pool's share" "cat $WORK/othershare/secret"
must_fail "writing /proc/sys" "echo 1 > /proc/sys/vm/drop_caches"
must_fail "loading a module" "modprobe dummy || insmod /lib/modules/\$(uname -r)/kernel/drivers/net/dummy.ko"
must_fail "making a host block device" "mknod /tmp/disk b 254 0 && head -c 1 /tmp/disk"
must_fail "creating a root-owned file on the share" "touch /datamnt/dsvmshare/rootfile"
# No account in the instance's shadow has a password hash (these users have
# none): the host's hashes are nowhere.
out=$(as_root "cut -d: -f2 /etc/shadow | sort -u")
[[ "$out" == "*" ]] || fail "password fields in the instance's shadow: $out"
left=$(as_root 'find /root /home /tmp -mindepth 1'); [[ -z "$left" ]] || fail "host files visible in /root, /home or /tmp: $left"
procs=$(as_root 'ps -e --no-headers | wc -l')
[[ "$procs" -lt 50 ]] || fail "instance sees $procs processes"
as_root "ps -e -o pid= | grep -qx \" *$SERVER_PID\"" && fail "the server process is visible"
pass "host, server data and other pools are out of reach of instance root"

# Networks: the own pool's neighbour answers; the other pool and the host do not.
ssh_to isoadmin "${ADDR[0]}" "timeout 3 bash -c 'exec 3<>/dev/tcp/${ADDR[1]}/22 && head -c 7 <&3'" | grep -q SSH-2.0 \
  || fail "instance 0 cannot reach instance 1"
gw2=$(echo "$SUBNET2" | awk -F'[./]' '{printf "%d.%d.%d.%d", $1, $2, $3, $4 + 1}')
for target in "$OTHER_ADDR" "$gw2"; do
  if ssh_to isoadmin "${ADDR[0]}" "timeout 3 bash -c 'exec 3<>/dev/tcp/$target/22'" 2>/dev/null; then
    fail "instance reached $target:22 outside its pool"
  fi
done
pass "instances reach their own pool only"

# Limits: a fork bomb and a memory hog in instance 0; instance 1 and the API
# still answer. (Times are reported, not asserted: machines are noisy.)
ssh_to isoadmin "${ADDR[0]}" 'nohup bash -c "bomb() { bomb | bomb & }; bomb" >/dev/null 2>&1 &' || true
ssh_to isoadmin "${ADDR[0]}" 'nohup python3 -c "b=[]
while True: b.append(bytearray(16<<20))" >/dev/null 2>&1 &' 2>/dev/null || true
sleep 3
start=$(date +%s%N)
ssh_to isoadmin "${ADDR[1]}" true || fail "instance 1 does not answer during the fork bomb"
ssh_ms=$(( ($(date +%s%N) - start) / 1000000 ))
start=$(date +%s%N)
dsp status >/dev/null || fail "the API does not answer during the fork bomb"
api_ms=$(( ($(date +%s%N) - start) / 1000000 ))
pids_max=$(cat /sys/fs/cgroup/pids/lxc.payload."${POOL}-0-"*/pids.max 2>/dev/null | head -1 || true)
pass "during a fork bomb and a memory hog in instance 0: ssh to instance 1 took ${ssh_ms} ms, the API ${api_ms} ms (pids.max ${pids_max:-?})"

dsp pool delete "$POOL" >/dev/null
dsp pool delete "$OTHER" >/dev/null
for _ in $(seq 120); do
  dsp pool show "$POOL" >/dev/null 2>&1 || dsp pool show "$OTHER" >/dev/null 2>&1 || break
  sleep 0.5
done
finish
