#!/usr/bin/env bash
# Template deployments (issue 15), on real LXC and sshd:
#   1. the reference's sample (examples/azure-dsvm), 2 instances, from
#      `dspool deployment group create` to
#        - the command's return (Succeeded), and the record's duration,
#        - the second instance Ready (its instance.ready event),
#        - the first SSH banner on the sample's SSH rule (through the
#          gateway),
#      its CustomScript extension taken out, against the direct path:
#      `dspool pool create` of the very pool spec the deployment made (the
#      same three moments); and the sample as written, whose extension
#      fetches the mount script (through --mirror, from a local HTTP
#      server) and mounts a storage share in each instance before it is
#      Ready: what the extension costs. In rotated order over ROUNDS rounds;
#   2. loading and evaluating a template of a 800-resource copy loop and
#      10,000 variable elements (bench/template_eval), and of a quarter,
#      half and three quarters of that: the work should be linear.
# Usage: bench/deploy.sh BUILD_DIR/apps/dspool/dspool [ROUNDS] [DOCS]
# Run as root. Prints a Markdown fragment and, unless DOCS is "-", writes it
# into DOCS (default docs/benchmarks.md), with the commit of the binary.
set -euo pipefail
COMMAND_LINE="$0 $*"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
DSPOOL=$(realpath "$1")
ROUNDS=${2:-5}
DOCS=${3:-$(dirname "$0")/../docs/benchmarks.md}
BUILD=$(dirname "$(dirname "$(dirname "$DSPOOL")")")
TEMPLATE_EVAL=$BUILD/bench/template_eval
SAMPLES=$(realpath "$(dirname "$0")/../examples/azure-dsvm")
source "$(dirname "$0")/../test/integration/lib.sh"
source "$(dirname "$0")/lib.sh"
[[ -x "$TEMPLATE_EVAL" ]] || fail "no $TEMPLATE_EVAL: cmake --build $BUILD --target template_eval"
require_root_and_lxc
WORK=$(mktemp -d /tmp/dspool-bench.XXXXXX)
DATA=$WORK/data
trap cleanup EXIT
POOL=benchdep
FRONT=127.0.0.$(shuf -i 20-250 -n 1)
SSH_PORT=$(free_port)
JUPYTER_PORT=$(free_port)
PASSWORD="Bench-Passw0rd-$RANDOM"

# The sample, with its frontend ports moved to free ones: as written
# (sample.json), and without its extension (template.json).
/usr/bin/python3 - "$SAMPLES" "$WORK" "$POOL" "$PASSWORD" "$SSH_PORT" "$JUPYTER_PORT" <<'PY'
import json, sys
samples, work, pool, password, ssh_port, jupyter_port = sys.argv[1:]
t = json.load(open(f"{samples}/dsvm-vmss-cluster.json"))
for rule in t["resources"][2]["properties"]["loadBalancingRules"]:
    port = rule["properties"]["frontendPort"]
    rule["properties"]["frontendPort"] = int(ssh_port if port == 22 else jupyter_port)
json.dump(t, open(f"{work}/sample.json", "w"))
del t["resources"][3]["properties"]["virtualMachineProfile"]["extensionProfile"]
json.dump(t, open(f"{work}/template.json", "w"))
p = json.load(open(f"{samples}/dsvm-vmss-cluster.parameters.json"))
fill = {"GEN-PASSWORD": password, "GEN-UNIQUE-8": pool, "ENTER-YO-KEY": "k", "ENTER-YO-STORAGEACCT": "files",
        "YOUR-AZURE-FILES-SHARE": "share"}
for v in p["parameters"].values():
    v["value"] = fill.get(v["value"], v["value"])
json.dump(p, open(f"{work}/parameters.json", "w"))
PY

# The mount script's mirror, as integration.deploy serves it.
serve_mount_script
SERVER_ARGS=(--front-address "$FRONT" --storage-root "$WORK/storage" --mirror "$MIRROR")
start_server

# The group, and for the sample as written the storage account and share
# its script mounts (made again each round: a group delete takes them).
new_group() {
  dsp group create -n bench -l local >/dev/null
  dsp storage account create -n files -g bench >/dev/null
  local key
  key=$(dsp storage account keys list -n files -o tsv | awk -F'\t' '$1 == "key1" {print $3}')
  dsp storage share create -n share --account-name files --account-key "$key" >/dev/null
  python_json "data['parameters']['storageAccountKey']['value'] = '$key'
json.dump(data, open('$WORK/sample-parameters.json', 'w'))" <"$WORK/parameters.json"
}
new_group

gone() { ! dsp pool show "$POOL" >/dev/null 2>&1 && [[ -z "$(leftovers "$POOL")" ]]; }

# One round of KIND (deploy, sample or native): "command_ms ready_ms banner_ms
# server_ms", from the command's start: its return; the second instance's
# instance.ready event (the server's clock, read the same way on both
# paths); the first SSH banner through the gateway; the deployment
# record's duration (the native path has none: -). Only the banner probe
# runs beside the command, on both paths.
one_round() {
  /usr/bin/python3 - "$1" "$DSPOOL" "$DATA" "$WORK" "$POOL" "$FRONT" "$SSH_PORT" <<'PY'
import datetime, json, socket, subprocess, sys, threading, time
kind, dspool, data, work, pool, front, port = sys.argv[1:8]
dsp = [dspool, "--data-dir", data]
banner = []
def probe():  # the first SSH banner on the pool's SSH rule
    while not banner:
        s = socket.socket()
        s.settimeout(0.05)
        try:
            s.connect((front, int(port)))
            # As an SSH client does: its version string first (the gateway
            # picks an instance at the client's first bytes).
            s.sendall(b"SSH-2.0-bench\r\n")
            s.settimeout(10)
            if s.recv(7) == b"SSH-2.0":
                banner.append(time.time())
        except OSError:
            time.sleep(0.002)
        finally:
            s.close()
last_seq = json.loads(subprocess.run(dsp + ["events", "-o", "json", "--limit", "1"], check=True,
                                     capture_output=True).stdout)["events"]
last_seq = last_seq[-1]["seq"] if last_seq else 0
start = time.time()
t = threading.Thread(target=probe, daemon=True)
t.start()
server_ms = "-"
if kind in ("deploy", "sample"):
    template, parameters = ("template", "parameters") if kind == "deploy" else ("sample", "sample-parameters")
    out = subprocess.run(dsp + ["deployment", "group", "create", "-g", "bench", "-n", "d", "-f", f"{work}/{template}.json",
                                "-p", f"@{work}/{parameters}.json"], check=True, capture_output=True, text=True).stdout
    duration = json.loads(out)["properties"]["duration"]  # "PT1.234S"
    server_ms = str(round(float(duration[2:-1]) * 1000)) if "M" not in duration else "-"
else:
    subprocess.run(dsp + ["pool", "create", "-f", f"{work}/native.json"], check=True, capture_output=True)
command = time.time()
t.join(120)
def ready_times():
    events = json.loads(subprocess.run(dsp + ["events", "-o", "json", "--after", str(last_seq), "--limit", "1000"],
                                       check=True, capture_output=True).stdout)["events"]
    return [datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
            for e in events if e["action"] == "instance.ready" and e["subject"].startswith(f"instance/{pool}-")]
while len(ready_times()) < 2:
    time.sleep(0.2)
ready = sorted(ready_times())[1]
ms = lambda x: str(round((x - start) * 1000))
print(ms(command), ms(ready), ms(banner[0]) if banner else "-", server_ms)
PY
}
teardown_round() {  # kind
  if [[ $1 == native ]]; then dsp pool delete "$POOL" >/dev/null; else dsp group delete -n bench --yes >/dev/null; fi
  wait_until 120 "pool $POOL gone" gone
  if [[ $1 != native ]]; then new_group; fi
}

# A first deployment gives the native path its spec: the pool the
# deployment made, as the API shows it, with the admin's password in plain
# text as the template gives it (both paths hash it once).
one_round deploy >/dev/null
dsp pool show "$POOL" -o json | python_json "
spec = data['spec']
spec['adminUser'].pop('passwordHash', None)
spec['adminUser']['password'] = '$PASSWORD'
json.dump(spec, open('$WORK/native.json', 'w'))"
teardown_round deploy

deploy=() native=() sample=()
kinds=(deploy native sample)
for ((r = 0; r < ROUNDS; r++)); do
  order=("${kinds[@]:r % 3}" "${kinds[@]:0:r % 3}")
  for kind in "${order[@]}"; do
    line=$(one_round "$kind")
    case $kind in deploy) deploy+=("$line") ;; native) native+=("$line") ;; sample) sample+=("$line") ;; esac
    log "round $r $kind: $line"
    teardown_round "$kind"
  done
done

# The median of field N of lines.
median() {  # field lines...
  local f=$1; shift
  printf '%s\n' "$@" | awk -v f="$f" '{print $f}' | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'
}
range() {  # field lines...
  local f=$1; shift
  printf '%s\n' "$@" | awk -v f="$f" '{print $f}' | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "–" hi}'
}
d_cmd=$(median 1 "${deploy[@]}") d_ready=$(median 2 "${deploy[@]}") d_banner=$(median 3 "${deploy[@]}")
d_server=$(median 4 "${deploy[@]}")
n_cmd=$(median 1 "${native[@]}") n_ready=$(median 2 "${native[@]}") n_banner=$(median 3 "${native[@]}")
s_cmd=$(median 1 "${sample[@]}") s_ready=$(median 2 "${sample[@]}") s_banner=$(median 3 "${sample[@]}")
s_server=$(median 4 "${sample[@]}")
EVAL=$("$TEMPLATE_EVAL" 9)

RESULTS="<!-- bench/deploy results: begin (written by bench/deploy.sh) -->
\`$COMMAND_LINE\`, binary $(build_commit "$DSPOOL"), $(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r),
$(nproc) CPUs, load at start $LOAD_AT_START. Medians over $ROUNDS rounds in rotated order
(ranges in brackets); each round ends with the pool deleted and the host clean.

The reference's sample with 2 instances (Standard_D2s_v3: 2 vCPUs, 8 GiB each), from the
command's start:

| path | command returns | 2 instances Ready | first SSH banner |
|---|---:|---:|---:|
| \`deployment group create\`, the sample without its extension (Succeeded; the record's duration: $d_server ms [$(range 4 "${deploy[@]}")]) | $d_cmd ms [$(range 1 "${deploy[@]}")] | $d_ready ms [$(range 2 "${deploy[@]}")] | $d_banner ms [$(range 3 "${deploy[@]}")] |
| \`pool create\` of the same spec (the direct path) | $n_cmd ms [$(range 1 "${native[@]}")] | $n_ready ms [$(range 2 "${native[@]}")] | $n_banner ms [$(range 3 "${native[@]}")] |
| ratio, deployment / direct path | | $(calc %.2f "$d_ready / $n_ready") | $(calc %.2f "$d_banner / $n_banner") |
| \`deployment group create\`, the sample as written: its extension fetches the mount script and mounts the share in each instance before it is Ready (the record's duration: $s_server ms [$(range 4 "${sample[@]}")]) | $s_cmd ms [$(range 1 "${sample[@]}")] | $s_ready ms [$(range 2 "${sample[@]}")] | $s_banner ms [$(range 3 "${sample[@]}")] |
| ratio, with the extension / without | $(calc %.2f "$s_cmd / $d_cmd") | $(calc %.2f "$s_ready / $d_ready") | $(calc %.2f "$s_banner / $d_banner") |

Ready is when the second instance's \`instance.ready\` event was written (the server's
clock), on both paths. The deployment's command returns once it has read its record as
Succeeded (it looks every 250 ms); \`pool create\` returns once the pool is recorded.

Loading and evaluating a template (bench/template_eval: the template module alone; Load,
every resource's body, the outputs; 9 runs after a warm-up):

$EVAL
<!-- bench/deploy results: end -->"
publish_results deploy "Template deployments (issue 15)"
