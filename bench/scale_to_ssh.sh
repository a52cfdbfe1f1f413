#!/usr/bin/env bash
# Measures, on real LXC and sshd:
#   1. the time from `dspool pool scale` (0 → 1) to the new instance's sshd
#      sending its SSH banner, over ROUNDS rounds (p50, p90, max);
#   2. the server's resident memory with INSTANCES instances running.
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
POOL=bench
SUBNET=$(free_subnet)
trap cleanup EXIT
mkdir -p "$WORK/share"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/key"
start_server
cat >"$WORK/spec.json" <<JSON
{"name": "$POOL", "instanceCount": 0, "size": {"vcpus": 1, "memoryMiB": 256},
 "network": {"subnet": "$SUBNET"}, "share": {"type": "bind", "source": "$WORK/share"},
 "adminUser": {"name": "benchadm", "sshPublicKey": "$(cat "$WORK/key.pub")"}}
JSON
dsp pool create -f "$WORK/spec.json" >/dev/null
addr=$(echo "$SUBNET" | awk -F'[./]' '{printf "%d.%d.%d.%d", $1, $2, $3, $4 + 2}')

# Until the instance exists, a connect waits for ARP: keep each try short, or
# the try's timeout becomes the resolution of the measurement.
banner() { timeout 0.05 bash -c "exec 3<>/dev/tcp/$addr/22 && head -c 7 <&3" 2>/dev/null; }
times=()
for r in $(seq "$ROUNDS"); do
  start=$(date +%s%N)
  dsp pool scale "$POOL" --count 1 >/dev/null
  until [[ "$(banner)" == "SSH-2.0" ]]; do :; done
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
  dsp pool scale "$POOL" --count 0 >/dev/null
  wait_ready "$POOL" 0
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
n=${#sorted[@]}
p50=${sorted[$(( n / 2 ))]}
p90=${sorted[$(( n * 9 / 10 ))]}
max=${sorted[$(( n - 1 ))]}

idle_rss=$(rss_kib "$SERVER_PID")
dsp pool scale "$POOL" --count "$INSTANCES" >/dev/null
wait_ready "$POOL" "$INSTANCES"
sleep 5  # a few report rounds from every agent
full_rss=$(rss_kib "$SERVER_PID")
dsp pool delete "$POOL" >/dev/null
for _ in $(seq 240); do dsp pool show "$POOL" >/dev/null 2>&1 || break; sleep 0.5; done

cat <<MD
    sudo $COMMAND_LINE

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r), load average
$LOAD_AT_START at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end; dspool $(build_commit "$DSPOOL").

| measure | value |
|---|---|
| scale 0 → 1 until sshd sends its banner, p50 ($n rounds) | ${p50} ms |
| same, p90 | ${p90} ms |
| same, max | ${max} ms |
| server RSS, pool at 0 | $(( idle_rss / 1024 )) MiB |
| server RSS, $INSTANCES instances Ready and reporting | $(( full_rss / 1024 )) MiB |
MD
