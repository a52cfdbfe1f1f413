# Shared helpers for the integration tests. Source it; set DSPOOL first.
#
# A test reports each check that held with `pass WHAT`, stops at the first
# that does not with `fail WHY`, and ends with `finish`; the closing line,
# "N passed, 0 failed" (or "N passed, 1 failed" from fail), counts the pass
# calls. A test that cannot run on this host calls `cannot_run_here WHY`.
set -euo pipefail

PASSED=0
pass() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; echo "$PASSED passed, 1 failed" >&2; exit 1; }
finish() {
  (( PASSED > 0 )) || fail "no check passed"
  echo "$PASSED passed, 0 failed"
}

# The host lacks what the test needs (root, LXC, overlayfs, a package):
# exit 77, which CTest reports as skipped (SKIP_RETURN_CODE), or fail where
# every test must run (DSPOOL_REQUIRE_ALL=1, as in CI: README.md, "Tests").
cannot_run_here() {
  [[ "${DSPOOL_REQUIRE_ALL:-}" != 1 ]] || fail "$* (DSPOOL_REQUIRE_ALL=1: a test that cannot run here fails)"
  echo "SKIP: $*"
  exit 77
}

# Runs COMMAND until it succeeds, every 0.2 s, for at most SECONDS; fails
# naming WHAT if it never does. How a test waits for an event.
wait_until() {  # seconds what command...
  local seconds=$1 what=$2 i
  shift 2
  for ((i = 0; i < seconds * 5; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  fail "not within $seconds s: $what"
}

require_root_and_lxc() {
  [[ $EUID -eq 0 ]] || cannot_run_here "integration tests need root"
  command -v lxc-start >/dev/null || cannot_run_here "lxc is not installed (scripts/install-deps.sh)"
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || cannot_run_here "this kernel has no overlayfs (modprobe overlay)"
}

# The start of every test, named NAME: needs root and LXC; makes WORK, a fresh
# directory under /tmp, and DATA=$WORK/data; cleanup runs on exit.
setup_test() {  # NAME
  require_root_and_lxc
  WORK=$(mktemp -d "/tmp/dspool-$1.XXXXXX")
  DATA=$WORK/data
  trap cleanup EXIT
}

# setup_test, then what a test of one pool needs: POOL (NAME and a random
# number, 8 characters at most), a free SUBNET, an empty share $WORK/share and
# the admin's key pair $WORK/key, $WORK/key.pub.
setup_pool_test() {  # NAME
  setup_test "$1"
  POOL="$1$RANDOM"
  POOL=${POOL:0:8}
  SUBNET=$(free_subnet)
  mkdir -p "$WORK/share"
  ssh-keygen -q -t ed25519 -N "" -C "$1 admin" -f "$WORK/key"
}

# A TCP port no socket on this host uses, in any state, below the ephemeral
# range (a client's connection holds its local port too, and may take any
# ephemeral one between our check and our bind).
PORT_MAX=$(( $(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range) - 10 ))
free_port() {
  local p
  for p in $(shuf -i 20000-$PORT_MAX -n 200); do
    if ! ss -Htan "sport = :$p" | grep -q .; then echo "$p"; return; fi
  done
  fail "no free port below $PORT_MAX"
}

# A subnet in 10.232.0.0/16 that no host route covers.
free_subnet() {
  local x
  for x in $(shuf -i 1-250 -n 50); do
    if ! ip -4 route show | grep -q "^10\.232\.$x\."; then echo "10.232.$x.0/24"; return; fi
  done
  fail "no free /24 in 10.232.0.0/16"
}

start_server() {
  # Instances (unprivileged) reach their channel through the data dir's
  # ancestors: they must be traversable.
  chmod 711 "$WORK"
  # SERVER_WRAPPER: a command (with its arguments) the server runs under.
  ${SERVER_WRAPPER[@]+"${SERVER_WRAPPER[@]}"} "$DSPOOL" server --data-dir "$DATA" --log-level "${LOG_LEVEL:-info}" \
    ${SERVER_ARGS[@]+"${SERVER_ARGS[@]}"} >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    dsp status >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; fail "server exited"; }
    sleep 0.1
  done
  cat "$WORK/server.log"; fail "server did not answer"
}

stop_server() {
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true
  fi
  SERVER_PID=""
}

# The gateway process the server started (server/gateway_process.h): it
# outlives the server, so a test ends it itself. Every gateway of DATA,
# whatever its binary's name (an upgrade's), also one an upgrade left
# draining.
gateway_pid() { cat "$DATA/gateway.pid" 2>/dev/null; }
stop_gateway() {
  local pids _
  pids=$(pgrep -f -- " gateway --data-dir $DATA " || true)
  [[ -n "$pids" ]] || return 0
  kill -TERM $pids 2>/dev/null
  for _ in $(seq 100); do
    pids=$(pgrep -f -- " gateway --data-dir $DATA " || true)
    [[ -n "$pids" ]] || return 0
    sleep 0.1
  done
  kill -KILL $pids 2>/dev/null
}

dsp() { "$DSPOOL" --data-dir "$DATA" "$@"; }
# Runs Python code on the JSON on stdin, as `data`.
python_json() { /usr/bin/python3 -c "import json,sys; data=json.load(sys.stdin)
$1"; }

# The id of pool $1's first listed instance.
first_instance() { dsp instance list --pool "$1" -o json | python_json "print(data['instances'][0]['id'])"; }

# Waits until pool $1 has exactly $2 instances, all Ready.
wait_ready() {
  local pool=$1 want=$2 i phases
  for i in $(seq 240); do
    phases=$(dsp instance list --pool "$pool" -o json | grep -o '"phase": *"[A-Za-z]*"' | sed 's/.*"\([A-Za-z]*\)"$/\1/' | sort | uniq -c | tr -s ' ' | xargs || true)
    if [[ "$want" -eq 0 && -z "$phases" ]] || [[ "$phases" == "$want Ready" ]]; then return 0; fi
    sleep 0.5
  done
  dsp instance list --pool "$pool" || true
  tail -50 "$WORK/server.log"
  fail "pool $pool did not reach $want Ready instances (have: $phases)"
}

# The spec of pool $POOL behind one SSH rule: one instance of VCPUS and
# MEMORY MiB, the admin dsvmadmin with $WORK/key.pub, front port FRONT → 22
# with a Tcp probe every 5 s.
ssh_pool_spec() {  # front vcpus memory
  cat <<JSON
{"name": "$POOL", "instanceCount": 1,
 "size": {"vcpus": $2, "memoryMiB": $3},
 "network": {"subnet": "$SUBNET"},
 "share": {"type": "bind", "source": "$WORK/share"},
 "adminUser": {"name": "dsvmadmin", "sshPublicKey": "$(cat "$WORK/key.pub")"},
 "loadBalancer": {
   "rules": [{"name": "SSH", "frontendPort": $1, "backendPort": 22, "probe": "ssh"}],
   "probes": [{"name": "ssh", "protocol": "Tcp", "port": 22, "intervalInSeconds": 5, "numberOfProbes": 2}]}}
JSON
}

# Two consecutive free ports P and P+1 (as free_port): prints P.
free_port_pair() {
  local p
  p=$(free_port)
  while (( p + 1 > PORT_MAX )) || ss -Htan | awk '{print $4}' | grep -qE ":($p|$((p + 1)))\$"; do
    p=$(free_port)
  done
  echo "$p"
}

# The spec of pool $POOL behind one SSH rule, FRONT → 22 with a Tcp probe
# every 5 s, and a NAT pool of two ports, NAT and NAT+1 → 22: COUNT
# instances of 1 vCPU and 512 MiB, the admin dsvmadmin with $WORK/key.pub.
# EXTRA adds top-level fields (', "standbyCount": 1').
ssh_nat_pool_spec() {  # front nat count [extra]
  cat <<JSON
{"name": "$POOL", "instanceCount": $3${4:-},
 "size": {"vcpus": 1, "memoryMiB": 512},
 "network": {"subnet": "$SUBNET"},
 "share": {"type": "bind", "source": "$WORK/share"},
 "adminUser": {"name": "dsvmadmin", "sshPublicKey": "$(cat "$WORK/key.pub")"},
 "loadBalancer": {
   "rules": [{"name": "SSH", "frontendPort": $1, "backendPort": 22, "probe": "ssh"}],
   "probes": [{"name": "ssh", "protocol": "Tcp", "port": 22, "intervalInSeconds": 5, "numberOfProbes": 2}],
   "inboundNatPools": [{"name": "ssh-nat", "frontendPortRangeStart": $2, "frontendPortRangeEnd": $(($2 + 1)),
                        "backendPort": 22}]}}
JSON
}

# What the kernel says of instance $1's processes: FROZEN or THAWED (the
# freezer cgroup liblxc made for its payload; cgroup v1 or v2).
freezer_state() {  # instance-id
  local v1=/sys/fs/cgroup/freezer/lxc.payload.$1/freezer.state v2=/sys/fs/cgroup/lxc.payload.$1/cgroup.events
  if [[ -r $v1 ]]; then
    cat "$v1"
  elif [[ -r $v2 ]]; then
    grep -q "^frozen 1" "$v2" && echo FROZEN || echo THAWED
  else
    echo "no freezer cgroup for $1"
  fi
}

# Pool $1 has one instance, a standby, Ready and frozen by the kernel.
standby_waiting() {  # pool
  local lines phase standby id
  lines=$(dsp instance list --pool "$1" -o json | python_json "
for i in data['instances']:
    print(i['phase'], bool(i.get('standby')), i['id'])")
  [[ $(wc -l <<<"$lines") -eq 1 ]] || return 1
  read -r phase standby id <<<"$lines"
  [[ $phase == Ready && $standby == True && "$(freezer_state "$id")" == FROZEN ]]
}

# Debian's Jupyter Notebook and what jupyter_client.py needs, or
# cannot_run_here.
require_jupyter() {
  local tool
  for tool in /usr/bin/jupyter-notebook /usr/bin/python3; do
    [[ -x $tool ]] || cannot_run_here "$tool is missing (scripts/install-deps.sh installs it)"
  done
  /usr/bin/python3 -c "import websocket" 2>/dev/null || cannot_run_here "python3-websocket is missing (scripts/install-deps.sh)"
}

# The spec of pool $POOL with a Jupyter address and no load balancer: COUNT
# instances of 1 vCPU and 1 GiB, the admin dsvmadmin with $WORK/key.pub,
# Jupyter on port FRONT, and EXTRA fields for the jupyter section (such as
# ', "cullIdleMinutes": 1').
jupyter_pool_spec() {  # count front [extra]
  cat <<JSON
{"name": "$POOL", "instanceCount": $1,
 "size": {"vcpus": 1, "memoryMiB": 1024},
 "network": {"subnet": "$SUBNET"},
 "share": {"type": "bind", "source": "$WORK/share"},
 "adminUser": {"name": "dsvmadmin", "sshPublicKey": "$(cat "$WORK/key.pub")"},
 "jupyter": {"frontendPort": $2${3:-}}}
JSON
}

instance_addresses() {
  dsp instance list --pool "$1" -o json | grep -o '"address": *"[0-9.]*"' | sed 's/.*"\([0-9.]*\)"$/\1/'
}

ssh_to() {
  local user=$1 addr=$2; shift 2
  ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o LogLevel=ERROR -o ConnectTimeout=10 "$user@$addr" "$@"
}

# The reference's mount script (dspool's equivalent, examples/azure-dsvm)
# where the sample's CustomScript fetches it from, served by a local HTTP
# server over $WORK (so $WORK's other files too): sets HTTP_PORT, HTTP_PID
# (killed at exit) and MIRROR, the server's --mirror for the script's
# GitHub address.
serve_mount_script() {
  mkdir -p "$WORK/mirror/Extensions/General"
  cp "$(dirname "${BASH_SOURCE[0]}")/../../examples/azure-dsvm/mountazurefiles.sh" "$WORK/mirror/Extensions/General/"
  HTTP_PORT=$(free_port)
  /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$WORK" "$HTTP_PORT" >"$WORK/http.log" 2>&1 &
  HTTP_PID=$!
  trap 'kill "$HTTP_PID" 2>/dev/null || true; cleanup' EXIT
  serving() { curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/mirror/Extensions/General/mountazurefiles.sh"; }
  wait_until 30 "the local HTTP server" serving
  MIRROR="https://raw.githubusercontent.com/Azure/DataScienceVM/master/=http://127.0.0.1:$HTTP_PORT/mirror/"
}

# ssh with a password ($PASSWORD) to user $1 on host $2, port $3: runs the
# rest of the arguments.
# The value of metric $1 in the server's /metrics (empty if it has none).
metric() { curl -s --unix-socket "$DATA/api.sock" http://x/metrics | awk -v m="$1" '$1 == m {print $2}'; }

ssh_password() {
  local user=$1 host=$2 port=$3; shift 3
  SSHPASS="$PASSWORD" sshpass -e ssh -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ConnectTimeout=20 -o PreferredAuthentications=password -o PubkeyAuthentication=no \
    "$user@$host" "$@"
}

# GET $2 from the control socket of instance $1's agent; prints the body.
# The socket is in a directory the instance's root writes: like the server,
# open it without following a link and connect through the descriptor
# (docs/security.md), never by name as root.
agent_get() {  # instance-id path
  /usr/bin/python3 - "$DATA/instances/$1/agent/control.sock" "$2" <<'PY'
import os, socket, stat, sys
fd = os.open(sys.argv[1], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
if not stat.S_ISSOCK(os.fstat(fd).st_mode):
    sys.exit(f"{sys.argv[1]} is not a socket")
s = socket.socket(socket.AF_UNIX)
s.connect(f"/proc/self/fd/{fd}")
s.sendall(f"GET {sys.argv[2]} HTTP/1.0\r\nHost: agent\r\n\r\n".encode())
data = b""
while chunk := s.recv(65536):
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
if not head.startswith(b"HTTP/1.") or head.split()[1] != b"200":
    sys.exit(f"agent {sys.argv[2]}: {head.splitlines()[0].decode(errors='replace') if head else 'no answer'}")
sys.stdout.write(body.decode())
PY
}

# Everything dspool might leave on the host for a pool.
leftovers() {
  local pool=$1
  {
    # This pool's bridge, and host ends of veths on it or on no bridge
    # (other tests' pools may be running at the same time).
    ip -o link show | grep -E "dsp-$pool[:@ ]" || true
    ip -o link show | grep "dspv" | grep -v " master dsp-" || true
    nft list table inet "dspool_$pool" 2>/dev/null | head -1 || true  # its network security rules
    grep -E " $DATA/" /proc/mounts || true
    ls "$DATA/lxc/containers" "$DATA/lxc/networks" 2>/dev/null | grep -v "^/\|^$" || true
    ls "$DATA/instances" 2>/dev/null || true
    find /sys/fs/cgroup -maxdepth 3 -type d \( -name "$pool-*" -o -name "lxc.*.$pool-*" \) 2>/dev/null || true
  } | sed '/^$/d'
}

# The ports the test's server reserved (DATA_DIR/reserved-ports) and kept,
# its pools not deleted, go back to the kernel's ephemeral range, under the
# server's lock (server/port_reservation.h): the host must not collect the
# reservations of tests whose data directory is gone.
release_reserved_ports() {
  [[ -f "${DATA:-/nonexistent}/reserved-ports" ]] || return 0
  flock /run/lock/dspool-reserved-ports.lock /usr/bin/python3 - "$DATA/reserved-ports" <<'PY'
import sys
SYSCTL = "/proc/sys/net/ipv4/ip_local_reserved_ports"
def parse(text):
    ports = set()
    for part in filter(None, text.strip().split(",")):
        first, _, last = part.partition("-")
        ports.update(range(int(first), int(last or first) + 1))
    return ports
left, parts = sorted(parse(open(SYSCTL).read()) - parse(open(sys.argv[1]).read())), []
for port in left:
    if parts and parts[-1][1] == port - 1:
        parts[-1][1] = port
    else:
        parts.append([port, port])
with open(SYSCTL, "w") as f:
    f.write(",".join(str(a) if a == b else f"{a}-{b}" for a, b in parts) + "\n")
PY
}

cleanup() {
  set +e  # best effort: every step runs even if one fails
  stop_server
  stop_gateway
  release_reserved_ports
  # Take down anything a failed test left.
  local c l
  for c in $(ls "${DATA:-/nonexistent}/lxc/containers" 2>/dev/null); do
    lxc-stop -P "$DATA/lxc/containers" -n "$c" -k >/dev/null 2>&1
  done
  for l in $(ip -o link show | grep -o "dsp-${POOL:-none}[^:@]*"); do ip link del "$l" 2>/dev/null; done
  nft delete element inet dspool same_bridge "{ \"dsp-${POOL:-none}\" . \"dsp-${POOL:-none}\" }" 2>/dev/null
  nft delete table inet "dspool_${POOL:-none}" 2>/dev/null  # its network security rules
  # Mounts left under WORK (an instance's root, mounted while it starts, by
  # a server killed then) come off first: removing WORK never walks into
  # them, nor off its file system.
  for l in $(awk -v w="${WORK:-/nonexistent}/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$l"
  done
  if [[ -n "${KEEP_WORK:-}" ]]; then echo "kept $WORK"; else rm -rf --one-file-system "${WORK:-/nonexistent}"; fi
}
