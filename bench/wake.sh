#!/usr/bin/env bash
# Waking from zero (issues 13 and 14), on real LXC, sshd and Debian's
# Jupyter Notebook: one pool (one instance when up) with an SSH rule and a
# Jupyter address. Each try first scales the pool to zero (--force) and
# waits until its instance is really gone, then logs in:
#   ssh      plain `ssh -p PORT dsvmadmin@127.0.0.1 echo ...` (a key, a
#            known-hosts file of its own; no timeout options) until the
#            command's output;
#   browser  a login at the pool's Jupyter address, the "starting" page
#            followed as its Refresh header says (to /hub/spawn-pending,
#            held until the server is ready, then redirected) to the
#            notebook's page, then code run in a new kernel (test/integration/jupyter_client.py
#            browse), until the code's output; also the time from the instance
#            turning Ready (its record's phaseSince) to the notebook's page.
# Then the same from zero with a standby: the pool's standbyCount is 1, and
# each try waits until its standby is Ready and frozen before it logs in.
# Before each try from zero, a second passes once the pool is at zero (to_zero).
# The anchor (there is no HAProxy equivalent of waking from zero): the same
# logins to the pool already up, in the same run (for the browser with no
# server running, so the anchor starts one too). Every try must succeed.
#
# Usage: bench/wake.sh BUILD/apps/dspool/dspool [TRIES]
#   TRIES  tries per kind and condition (default: 20)
# Environment: DOCS (docs/benchmarks.md; "-" prints the results only).
# Run as root. Writes the results between this script's markers in
# docs/benchmarks.md (appending the section the first time) and prints them.
set -euo pipefail
COMMAND_LINE="$0 $*"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
DSPOOL=$(realpath "$1")
TRIES=${2:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
DOCS=${DOCS:-$REPO/docs/benchmarks.md}
source "$REPO/test/integration/lib.sh"
source "$HERE/lib.sh"
require_root_and_lxc
[[ "$TRIES" =~ ^[1-9][0-9]*$ ]] || fail "TRIES must be a positive number, not '$TRIES'"
require_jupyter

WORK=$(mktemp -d /tmp/dspool-bench-wake.XXXXXX)
DATA=$WORK/data
POOL=wak$RANDOM
POOL=${POOL:0:8}
SUBNET=$(free_subnet)
trap bench_teardown EXIT  # bench/lib.sh: the pool, then the server, containers, bridge, WORK
trap 'exit 130' INT TERM

mkdir -p "$WORK/share"
ssh-keygen -q -t ed25519 -N "" -C "bench admin" -f "$WORK/key"
start_server
GW=$(free_port)
JP=$(free_port)
[[ "$JP" != "$GW" ]] || JP=$(free_port)
# ssh_pool_spec (test/integration/lib.sh) plus the Jupyter address.
ssh_pool_spec "$GW" 1 1024 | /usr/bin/python3 -c '
import json, sys
spec = json.load(sys.stdin)
spec["jupyter"] = {"frontendPort": int(sys.argv[1])}
print(json.dumps(spec))' "$JP" >"$WORK/spec.json"
dsp pool create -f "$WORK/spec.json" >/dev/null
echo 'alice password 1' | dsp user add alice --password-stdin >/dev/null
wait_ready "$POOL" 1

ssh_login() {
  ssh -i "$WORK/key" -o BatchMode=yes -o UserKnownHostsFile="$WORK/known_hosts" \
      -o StrictHostKeyChecking=accept-new -o LogLevel=ERROR -p "$GW" dsvmadmin@127.0.0.1 echo woke
}
# browser_login TRY: a new browser (no cookie) to a working notebook; its
# JSON (jupyter_client.py browse) in $WORK/browser.TRY.json.
browser_login() {
  rm -f "$WORK/cookies"
  /usr/bin/python3 "$REPO/test/integration/jupyter_client.py" "https://127.0.0.1:$JP" alice 'alice password 1' \
    browse "$WORK/cookies" 'print(6 * 7)' >"$WORK/browser.$1.json"
}
wait_until 60 "a first login through the gateway" ssh_login >/dev/null
ready_at() {  # the pool's Ready instance: when it turned Ready ("2026-12-06T13:05:26.207Z")
  dsp instance list --pool "$POOL" -o json | /usr/bin/python3 -c "
import json, sys
print([i['phaseSince'] for i in json.load(sys.stdin)['instances'] if i['phase'] == 'Ready'][0])"
}
stop_notebook() { dsp session stop alice --pool "$POOL" >/dev/null 2>&1 || true; }
to_zero() {
  dsp pool scale "$POOL" --count 0 --force >/dev/null
  if [[ $STANDBY == 0 ]]; then
    wait_ready "$POOL" 0
  else
    wait_until 120 "the pool at zero with its standby frozen" standby_waiting "$POOL"
  fi
  # A pool at zero has been idle a while when someone comes: the try starts
  # a second after the pool reached zero, not beside whatever work the
  # removal leaves to the host.
  sleep 1
}

# R[KIND.CONDITION] holds each try's time in ms, F[...] the failures.
declare -A R F
# try KIND CONDITION N: one login, timed; from zero if CONDITION is "zero"
# or "standby".
try() {
  local kind=$1 condition=$2 n=$3 t0 t1 ok=1
  if [[ $condition != up ]]; then to_zero; elif [[ $kind == browser ]]; then stop_notebook; fi
  t0=$(date +%s%N)
  if [[ $kind == ssh ]]; then
    [[ "$(ssh_login 2>>"$WORK/ssh.err")" == woke ]] || ok=0
  else
    browser_login "$condition.$n" 2>>"$WORK/browser.err" || ok=0
  fi
  t1=$(date +%s%N)
  if ((ok)); then
    R[$kind.$condition]+="$(( (t1 - t0) / 1000000 )) "
    if [[ $kind.$condition == browser.zero ]]; then
      R[gap]+="$(/usr/bin/python3 -c "
import datetime, json, sys
ready = datetime.datetime.fromisoformat(sys.argv[2].replace('Z', '+00:00')).timestamp()
print(round((json.load(open(sys.argv[1]))['page_at'] - ready) * 1000))" "$WORK/browser.zero.$n.json" "$(ready_at)") "
    fi
  else
    F[$kind.$condition]=$(( ${F[$kind.$condition]:-0} + 1 ))
  fi
}
for n in $(seq "$TRIES"); do
  for kind in ssh browser; do try "$kind" up "$n"; done
done
STANDBY=0
for condition in zero standby; do
  if [[ $condition == standby ]]; then
    STANDBY=1
    dsp pool scale "$POOL" --standby 1 >/dev/null
  fi
  for n in $(seq "$TRIES"); do
    for kind in ssh browser; do
      try "$kind" "$condition" "$n"
      echo "bench: try $n, $kind from $condition: $(awk '{print $NF}' <<<"${R[$kind.$condition]:-–}") ms" >&2
    done
  done
done

# stats TIMES: "median p90 max" (nearest rank), or dashes.
stats() {
  [[ -n "$1" ]] || { echo "– – –"; return; }
  tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '{t[NR] = $1}
    END { p50 = int((NR + 1) / 2); p90 = int(0.9 * NR); if (p90 < 0.9 * NR) p90++
          printf "%d %d %d\n", t[p50], t[p90], t[NR] }'
}
row() {  # kind condition label
  local z50 z90 zmax u50 u90 umax ratio
  read -r z50 z90 zmax < <(stats "${R[$1.$2]:-}")
  read -r u50 u90 umax < <(stats "${R[$1.up]:-}")
  ratio=$(awk -v a="$z50" -v b="$u50" 'BEGIN { if (b > 0 && a + 0 == a) printf "%.1f", a / b; else print "–" }')
  echo "| $3 | $z50 | $z90 | $zmax | ${F[$1.$2]:-0} | $u50 | $u90 | $umax | ${F[$1.up]:-0} | $ratio |"
}
read -r g50 g90 gmax < <(stats "${R[gap]:-}")
failures=$(( ${F[ssh.zero]:-0} + ${F[browser.zero]:-0} + ${F[ssh.standby]:-0} + ${F[browser.standby]:-0} +
              ${F[ssh.up]:-0} + ${F[browser.up]:-0} ))
commit=$(build_commit "$DSPOOL")
RESULTS=$(cat <<MD
<!-- bench/wake.sh results: begin (generated; the next run replaces this block) -->
    sudo $COMMAND_LINE

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r), load average
$LOAD_AT_START at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end; dspool $commit.
One pool (one instance of 1 vCPU when up) with an SSH rule and a Jupyter address, on this host.
*From zero*: before each try the pool is scaled to zero (\`--force\`), its instance is gone,
and 1 s has passed (an idle pool, not one emptied a moment ago);
*up* (the anchor; there is no HAProxy equivalent of waking from zero): the same login to the
pool already up. *ssh*: \`ssh -p PORT dsvmadmin@127.0.0.1 echo woke\` (a key, no timeout
options) until its output. *browser*: a login (POST /hub/login), the "starting" page followed as
its \`Refresh\` says (to /hub/spawn-pending, held until the server is ready, then a redirect) to
the notebook's page, a new kernel, \`print(6 * 7)\` run over its
WebSocket, until the output (test/integration/jupyter_client.py \`browse\`; for *up* no server
was running, so it starts one too). *With a standby*: from zero, the pool's \`standbyCount\` 1,
its standby Ready and frozen before each try (docs/pool-spec.md, "Standbys"). $TRIES tries
each; times in ms (p90 by nearest rank); *ratio*: median from zero / median up.

| login | median, from zero | p90 | max | failed | median, up | p90 | max | failed | ratio |
|---|---|---|---|---|---|---|---|---|---|
$(row ssh zero ssh)
$(row browser zero browser)
$(row ssh standby "ssh, with a standby")
$(row browser standby "browser, with a standby")

Browser from zero, from the instance turning Ready (its record's \`phaseSince\`) to the
notebook's page: median $g50 ms, p90 $g90 ms, max $gmax ms. Failures in all: $failures.

Per try, from zero (ms): ssh ${R[ssh.zero]:-}; browser ${R[browser.zero]:-}; Ready → page
${R[gap]:-}. With a standby: ssh ${R[ssh.standby]:-}; browser ${R[browser.standby]:-}.
<!-- bench/wake.sh results: end -->
MD
)
publish_results wake.sh "Waking from zero (issues 13 and 14)"
if ((failures > 0)); then
  tail -5 "$WORK/ssh.err" "$WORK/browser.err" >&2 2>/dev/null || true
  fail "$failures logins failed"
fi
