#!/usr/bin/env bash
# Measures, on real LXC and sshd:
#   1. the time from `dspool pool scale` (0 → 1) to the new instance's sshd
#      sending its SSH banner, over ROUNDS rounds of each path:
#        cold:    a pool without standbys boots a new instance;
#        standby: a pool with standbyCount 1 takes its frozen standby and
#                 thaws it (model/instance.h);
#      the two alternate, in rotated order (p50, p90, max of each);
#   2. the memory a frozen standby holds (its memory cgroup);
#   3. the server's resident memory with INSTANCES instances running.
# Usage: bench/scale_to_ssh.sh BUILD_DIR/apps/dspool/dspool [ROUNDS] [INSTANCES]
# Run as root. Results are printed as a Markdown fragment for docs/benchmarks.md,
# with the commit the binary was built from, the kernel, the CPUs and the load.
set -euo pipefail
COMMAND_LINE="$0 $*"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
DSPOOL=$(realpath "$1")
ROUNDS=${2:-20}
INSTANCES=${3:-50}
source "$(dirname "$0")/../test/integration/lib.sh"
source "$(dirname "$0")/lib.sh"  # rss_kib, build_commit
require_root_and_lxc
WORK=$(mktemp -d /tmp/dspool-bench.XXXXXX)
DATA=$WORK/data
trap cleanup EXIT
mkdir -p "$WORK/share"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/key"
start_server
make_pool() {  # name standbyCount
  cat >"$WORK/$1.json" <<JSON
{"name": "$1", "instanceCount": 0, "standbyCount": $2, "size": {"vcpus": 1, "memoryMiB": 256},
 "network": {"subnet": "$(free_subnet)"}, "share": {"type": "bind", "source": "$WORK/share"},
 "adminUser": {"name": "benchadm", "sshPublicKey": "$(cat "$WORK/key.pub")"}}
JSON
  dsp pool create -f "$WORK/$1.json" >/dev/null
}
make_pool cold 0
make_pool warm 1

# The pool's instances as "address id" lines.
instances() {
  dsp instance list --pool "$1" -o json | python_json "
for i in data['instances']:
    print(i['address'], i['id'])"
}
# Times `dspool pool scale POOL --count 1` to the SSH banner from ADDRESS:22,
# in ms. Until the instance exists a connect waits for ARP: each try is
# short (50 ms), or its timeout would become the resolution. A frozen
# standby's kernel accepts at once; its banner comes once sshd runs again.
time_scale() {  # pool address
  /usr/bin/python3 - "$DSPOOL" "$DATA" "$1" "$2" <<'PY'
import socket, subprocess, sys, time
dspool, data, pool, address = sys.argv[1:5]
start = time.monotonic_ns()
subprocess.run([dspool, "--data-dir", data, "pool", "scale", pool, "--count", "1"], check=True,
               stdout=subprocess.DEVNULL)
while True:
    s = socket.socket()
    s.settimeout(0.05)
    try:
        s.connect((address, 22))
        s.settimeout(10)
        if s.recv(7) == b"SSH-2.0":
            break
    except OSError:
        time.sleep(0.001)
    finally:
        s.close()
print((time.monotonic_ns() - start) // 1_000_000)
PY
}

# Instance 0's address: the subnet's third (network, bridge, then index 0).
cold_address=$(python_json "
import ipaddress
print(ipaddress.ip_network(data['network']['subnet'])[2])" <"$WORK/cold.json")
cold=() warm=()
round_cold() {
  cold+=("$(time_scale cold "$cold_address")")
  dsp pool scale cold --count 0 --force >/dev/null
  wait_ready cold 0
}
round_warm() {
  wait_until 120 "the warm pool's standby, frozen" standby_waiting warm
  local address
  address=$(instances warm | awk '{print $1}')
  warm+=("$(time_scale warm "$address")")
  dsp pool scale warm --count 0 --force >/dev/null
}
wait_until 120 "the warm pool's standby, frozen" standby_waiting warm
standby_id=$(instances warm | awk '{print $2}')
standby_memory=$(cat "/sys/fs/cgroup/memory/lxc.payload.$standby_id/memory.usage_in_bytes" 2>/dev/null ||
                 cat "/sys/fs/cgroup/lxc.payload.$standby_id/memory.current")
for r in $(seq "$ROUNDS"); do
  if (( r % 2 )); then round_cold; round_warm; else round_warm; round_cold; fi
done

stats() {  # values...: "p50 p90 max"
  local sorted n
  sorted=($(printf '%s\n' "$@" | sort -n))
  n=${#sorted[@]}
  echo "${sorted[$(( n / 2 ))]} ${sorted[$(( n * 9 / 10 ))]} ${sorted[$(( n - 1 ))]}"
}
read -r cold_p50 cold_p90 cold_max <<<"$(stats "${cold[@]}")"
read -r warm_p50 warm_p90 warm_max <<<"$(stats "${warm[@]}")"

dsp pool delete warm >/dev/null
idle_rss=$(rss_kib "$SERVER_PID")
dsp pool scale cold --count "$INSTANCES" >/dev/null
wait_ready cold "$INSTANCES"
sleep 5  # a few report rounds from every agent
full_rss=$(rss_kib "$SERVER_PID")
dsp pool delete cold >/dev/null
for _ in $(seq 240); do dsp pool show cold >/dev/null 2>&1 || break; sleep 0.5; done

cat <<MD
    sudo $COMMAND_LINE

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r), load average
$LOAD_AT_START at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end; dspool $(build_commit "$DSPOOL").
$ROUNDS rounds of each path, alternating, the first path of each round rotated.

| scale 0 → 1 until sshd sends its banner | p50 | p90 | max |
|---|---|---|---|
| cold: a new instance boots | ${cold_p50} ms | ${cold_p90} ms | ${cold_max} ms |
| standby: the frozen standby is taken and thawed | ${warm_p50} ms | ${warm_p90} ms | ${warm_max} ms |

| measure | value |
|---|---|
| memory a frozen standby holds (its memory cgroup) | $(( standby_memory / 1048576 )) MiB |
| server RSS, pool at 0 | $(( idle_rss / 1024 )) MiB |
| server RSS, $INSTANCES instances Ready and reporting | $(( full_rss / 1024 )) MiB |

Rounds in ms, cold: ${cold[*]}; standby: ${warm[*]}.
MD
