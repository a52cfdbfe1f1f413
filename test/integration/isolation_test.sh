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

MEMORY_MIB=256
MAX_PROCESSES=256
spec() {  # name subnet share count
  cat <<JSON
{"name": "$1", "instanceCount": $4, "size": {"vcpus": 1, "memoryMiB": $MEMORY_MIB, "maxProcesses": $MAX_PROCESSES},
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
# Bob's session runs; sudo refuses him (no password to give, none asked).
# sudo's complaint goes to the same remote stream as the echo: ssh carries
# stderr on its own channel, and the two would interleave at random here.
out=$(ssh_bob 'sudo -n true 2>&1; echo "sudo exit $?"' 2>&1) || fail "bob's session failed: $out"
[[ "$out" == *"sudo: a password is required"*"sudo exit 1" ]] || fail "a user who is not an admin: sudo said '$out'"
pass "sudo works for the admin only; instance root is host uid $host_uid"

# Runs command $3 as instance root; it must fail, with reason $2 in what it
# says (so that a broken ssh or a typo cannot pass for a refusal).
must_fail() {  # description reason command
  local out
  if out=$(ssh_to isoadmin "${ADDR[0]}" "sudo -n sh -c '$3'" 2>&1); then fail "$1 succeeded: $out"; fi
  [[ "$out" == *"$2"* ]] || fail "$1 failed, but not with '$2': $out"
}
# A host file that exists is not in the instance's view at all.
must_be_hidden() {  # description host-path
  [[ -e "$2" ]] || fail "$2 does not exist on the host: the check of $1 would prove nothing"
  must_fail "$1" "No such file or directory" "cat $2"
}
must_be_hidden "reading the server's data dir" "$DATA/state.db"
must_be_hidden "reading a pool host key" "$DATA/pools/$POOL/ssh_host_ed25519_key"
must_be_hidden "reading the host's SSH host key" /etc/ssh/ssh_host_ed25519_key
must_be_hidden "reading another pool's share" "$WORK/othershare/secret"
must_fail "writing /proc/sys" "Read-only file system" "echo 1 > /proc/sys/vm/drop_caches"
# finit_module(2) of any file: refused for want of CAP_SYS_MODULE before the
# file is read (the host may have no modules, nor the instance insmod).
must_fail "loading a module" "Operation not permitted" "python3 -" <<'PY'
import ctypes, os, sys
nr = {"x86_64": 313, "aarch64": 273}[os.uname().machine]
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("/bin/true", os.O_RDONLY)
if libc.syscall(nr, fd, b"", 0) != 0:
    sys.exit("finit_module: " + os.strerror(ctypes.get_errno()))
PY
must_fail "making a host block device" "Operation not permitted" "mknod /tmp/disk b 254 0"
# The share's id mapping has no id for the instance's root (root-squashed,
# docs/security.md): the kernel has no owner to give its file.
must_fail "creating a root-owned file on the share" "Value too large for defined data type" \
  "touch /datamnt/dsvmshare/rootfile"
# No account in the instance's shadow has a password hash (these users have
# none): the host's hashes are nowhere.
out=$(as_root "cut -d: -f2 /etc/shadow | sort -u")
[[ "$out" == "*" ]] || fail "password fields in the instance's shadow: $out"
left=$(as_root 'find /root /home /tmp -mindepth 1'); [[ -z "$left" ]] || fail "host files visible in /root, /home or /tmp: $left"
pids=$(as_root 'ps -e -o pid=') || fail "ps in the instance failed: $pids"
procs=$(wc -l <<<"$pids")
[[ "$procs" -gt 0 && "$procs" -lt 50 ]] || fail "instance sees $procs processes"
! grep -qx " *$SERVER_PID" <<<"$pids" || fail "the server process (pid $SERVER_PID) is visible"
pass "host, server data and other pools are out of reach of instance root"

# Networks: the own pool's neighbour answers; the other pool and the host
# do not: their packets are dropped, so the connection times out (timeout's
# exit 124), where a reached port would answer or refuse.
tcp_from_0() {  # address: what a connection from instance 0 to address:22 gives, and its exit status
  ssh_to isoadmin "${ADDR[0]}" "timeout 3 bash -c 'exec 3<>/dev/tcp/$1/22 && head -c 7 <&3'; echo \" exit \$?\""
}
out=$(tcp_from_0 "${ADDR[1]}")
[[ "$out" == "SSH-2.0 exit 0" ]] || fail "instance 0 cannot reach instance 1: $out"
gw2=$(echo "$SUBNET2" | awk -F'[./]' '{printf "%d.%d.%d.%d", $1, $2, $3, $4 + 1}')
for target in "$OTHER_ADDR" "$gw2"; do
  out=$(tcp_from_0 "$target")
  [[ "$out" == " exit 124" ]] || fail "instance 0 to $target:22, outside its pool, was not dropped: $out"
done
pass "instances reach their own pool only"

# Limits: instance 0's cgroups hold the pool's size, read back from them
# (cgroup v2, or v1's pids and memory hierarchies); a memory hog and a fork
# bomb in it stop at those limits; instance 1 and the API still answer.
# (Times are reported, not asserted: machines are noisy.)
INSTANCE0=$(dsp instance list --pool "$POOL" -o json | /usr/bin/python3 -c "import json, sys
print([i['id'] for i in json.load(sys.stdin)['instances'] if i['address'] == '${ADDR[0]}'][0])")
INIT0=$(lxc-info -P "$DATA/lxc/containers" -n "$INSTANCE0" -pH)
[[ "$INIT0" =~ ^[0-9]+$ ]] || fail "no init pid for $INSTANCE0: '$INIT0'"
CGROUP2=false
[[ -f /sys/fs/cgroup/cgroup.controllers ]] && CGROUP2=true
# The instance's cgroup for a controller (the unified one on v2): the
# ancestor of its init's cgroup named after the container.
instance_cgroup() {  # controller
  local path dir
  if $CGROUP2; then
    path=$(awk -F: '$1 == "0" {print $3}' "/proc/$INIT0/cgroup")
    dir=/sys/fs/cgroup$path
  else
    path=$(awk -F: -v c="$1" '{n = split($2, cs, ","); for (i = 1; i <= n; i++) if (cs[i] == c) print $3}' \
             "/proc/$INIT0/cgroup")
    dir=/sys/fs/cgroup/$1$path
  fi
  while [[ "$dir" == /sys/fs/cgroup/?* && "$(basename "$dir")" != *"$INSTANCE0"* ]]; do dir=$(dirname "$dir"); done
  [[ "$(basename "$dir")" == *"$INSTANCE0"* && -d "$dir" ]] || fail "no $1 cgroup of $INSTANCE0 above its init's ($path)"
  echo "$dir"
}
PIDS_CG=$(instance_cgroup pids)
MEM_CG=$(instance_cgroup memory)
if $CGROUP2; then MEM_LIMIT_FILE=memory.max; else MEM_LIMIT_FILE=memory.limit_in_bytes; fi
pids_max=$(cat "$PIDS_CG/pids.max")
mem_max=$(cat "$MEM_CG/$MEM_LIMIT_FILE")
[[ "$pids_max" == "$MAX_PROCESSES" ]] || fail "$PIDS_CG/pids.max is $pids_max, the pool's size says $MAX_PROCESSES"
[[ "$mem_max" == $((MEMORY_MIB << 20)) ]] || fail "$MEM_CG/$MEM_LIMIT_FILE is $mem_max, the pool's size says $MEMORY_MIB MiB"
pass "instance 0's cgroups ($($CGROUP2 && echo v2 || echo v1)) hold the pool's size: pids.max $pids_max, $MEM_LIMIT_FILE $mem_max"

# Memory: the hog grows until the limit stops it (v1: memory.failcnt, v2:
# memory.events max), and the use never went over (the peak, where the
# kernel keeps one).
mem_limit_hits() {
  if $CGROUP2; then awk '$1 == "max" {print $2}' "$MEM_CG/memory.events"; else cat "$MEM_CG/memory.failcnt"; fi
}
mem_hits_before=$(mem_limit_hits)
ssh_to isoadmin "${ADDR[0]}" 'nohup python3 -c "b=[]
while True: b.append(bytearray(16<<20))" >/dev/null 2>&1 &' || fail "cannot start the memory hog"
mem_limit_hit() { (( $(mem_limit_hits) > mem_hits_before )); }
wait_until 120 "instance 0's memory use reaching its limit" mem_limit_hit
if $CGROUP2; then peak_file=memory.peak; else peak_file=memory.max_usage_in_bytes; fi
peak=n/a
if [[ -f "$MEM_CG/$peak_file" ]]; then
  peak=$(cat "$MEM_CG/$peak_file")
  (( peak <= mem_max )) || fail "instance 0 used $peak bytes ($peak_file), over its limit $mem_max"
fi
pass "a memory hog in instance 0 was stopped at the limit ($(mem_limit_hits) hits, $peak_file $peak)"

# Processes: the fork bomb fills pids.max; forks beyond it are refused
# (pids.events max) and the count never goes over.
pids_refused() { awk '$1 == "max" {print $2}' "$PIDS_CG/pids.events"; }
refused_before=$(pids_refused)
ssh_to isoadmin "${ADDR[0]}" 'nohup bash -c "bomb() { bomb | bomb & }; bomb" >/dev/null 2>&1 &' \
  || fail "cannot start the fork bomb"
fork_refused() { (( $(pids_refused) > refused_before )); }
wait_until 120 "the fork bomb reaching pids.max" fork_refused
highest=0
for _ in $(seq 20); do
  current=$(cat "$PIDS_CG/pids.current")
  (( current <= pids_max )) || fail "instance 0 runs $current tasks, over pids.max $pids_max"
  (( current > highest )) && highest=$current
done
if $CGROUP2; then task_files=cgroup.threads; else task_files=tasks; fi
tasks=$(find "$PIDS_CG" -name "$task_files" -exec cat {} + | wc -l)
(( tasks <= pids_max )) || fail "instance 0's cgroups list $tasks tasks, over pids.max $pids_max"
pass "a fork bomb in instance 0 stopped at pids.max $pids_max ($(pids_refused) forks refused; up to $highest tasks seen)"

start=$(date +%s%N)
ssh_to isoadmin "${ADDR[1]}" true || fail "instance 1 does not answer during the fork bomb"
ssh_ms=$(( ($(date +%s%N) - start) / 1000000 ))
start=$(date +%s%N)
dsp status >/dev/null || fail "the API does not answer during the fork bomb"
api_ms=$(( ($(date +%s%N) - start) / 1000000 ))
pass "during the fork bomb and the memory hog in instance 0: ssh to instance 1 took ${ssh_ms} ms, the API ${api_ms} ms"

dsp pool delete "$POOL" >/dev/null
dsp pool delete "$OTHER" >/dev/null
pools_gone() { ! dsp pool show "$POOL" >/dev/null 2>&1 && ! dsp pool show "$OTHER" >/dev/null 2>&1; }
wait_until 120 "both pools deleted" pools_gone
pass "both pools deleted, the fork bomb's instance too"
finish
