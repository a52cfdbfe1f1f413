#!/usr/bin/env bash
# The reference's deployment (issue 15) on real LXC, sshd and the Jupyter
# frontend: `dspool group create` and the deprecated `dspool group deployment
# create` exactly as the reference types them, with the sample template of
# examples/azure-dsvm/ and its parameters file (placeholders filled). The
# sample's CustomScript extension is taken out: this host does not run
# extensions yet, and the template as written is refused naming it. Then:
# ssh on port 22 with the template's password and Jupyter on 8000 reach an
# instance; redeploying changes nothing; instanceCount 3 scales; a bad
# parameter leaves nothing behind; no secret is stored or logged; `group
# delete --yes` removes the pool.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_test deploy
SAMPLES=$(realpath "$(dirname "$0")/../../examples/azure-dsvm")
POOL="dep$RANDOM"
POOL=${POOL:0:8}
PASSWORD="Deploy-Passw0rd-$RANDOM"
KEY="StorageKey$RANDOM$RANDOM"
FRONT="127.0.0.$(shuf -i 20-250 -n 1)"

# The sample's frontend ports are 22 and 8000; where the host already
# listens on one for every address (an sshd on 22), the copy moves it.
# (Nothing else of the sample changes.)
port_taken() { ss -Hltn "sport = :$1" | awk '{print $4}' | grep -qE "^(0\.0\.0\.0|\*|\[::\]|$FRONT):$1$"; }
SSH_PORT=22 JUPYTER_PORT=8000
port_taken 22 && SSH_PORT=$(free_port)
port_taken 8000 && JUPYTER_PORT=$(free_port)
# Likewise the sample's network, 10.0.0.0/24, where a host route has it.
SUBNET=10.0.0.0/24
if ip -4 route show | grep -q "^10\.0\.0\."; then SUBNET=$(free_subnet); fi

/usr/bin/python3 - "$SAMPLES" "$WORK" "$POOL" "$PASSWORD" "$KEY" "$SSH_PORT" "$JUPYTER_PORT" "$SUBNET" <<'PY'
import json, sys
samples, work, pool, password, key, ssh_port, jupyter_port, subnet = sys.argv[1:]
t = json.load(open(f"{samples}/dsvm-vmss-cluster.json"))
if subnet != "10.0.0.0/24":
    t["variables"]["addressPrefix"] = t["variables"]["subnetPrefix"] = subnet
vmss = t["resources"][3]
assert vmss["type"] == "Microsoft.Compute/virtualMachineScaleSets"
del vmss["properties"]["virtualMachineProfile"]["extensionProfile"]
for rule in t["resources"][2]["properties"]["loadBalancingRules"]:
    if rule["properties"]["frontendPort"] == 22:
        rule["properties"]["frontendPort"] = int(ssh_port)
    if rule["properties"]["frontendPort"] == 8000:
        rule["properties"]["frontendPort"] = int(jupyter_port)
json.dump(t, open(f"{work}/dsvm-vmss-cluster.json", "w"), indent=2)
p = json.load(open(f"{samples}/dsvm-vmss-cluster.parameters.json"))
fill = {"GEN-PASSWORD": password, "GEN-UNIQUE-8": pool, "ENTER-YO-KEY": key,
        "ENTER-YO-STORAGEACCT": "dspoolfiles", "YOUR-AZURE-FILES-SHARE": "dsvmshare"}
for v in p["parameters"].values():
    v["value"] = fill.get(v["value"], v["value"])
json.dump(p, open(f"{work}/dsvm-vmss-cluster.parameters.json", "w"), indent=2)
PY

SERVER_ARGS=(--front-address "$FRONT" --share-root "$WORK/shares")
start_server
cd "$WORK"

dsp group create --name RG --location local >group.json
grep -q '"provisioningState": "Succeeded"' group.json || fail "group create: $(cat group.json)"
pass "group create"

# The template as written: refused by name, nothing made.
if dsp group deployment create --resource-group RG --template-file "$SAMPLES/dsvm-vmss-cluster.json" \
    --parameters @dsvm-vmss-cluster.parameters.json >/dev/null 2>refused.err; then
  fail "the sample with its extension was deployed"
fi
grep -q "extensionProfile: extensions are not run on this host yet" refused.err || fail "refusal: $(cat refused.err)"
[[ "$(dsp deployment group list -g RG)" == "[]" ]] || fail "a refused deployment left a record"
pass "the extension is refused by name, and nothing is made"

dsp group deployment create --resource-group RG --template-file dsvm-vmss-cluster.json \
  --parameters @dsvm-vmss-cluster.parameters.json >deploy.json 2>deploy.err || fail "deploy: $(cat deploy.err)"
grep -q '"provisioningState": "Succeeded"' deploy.json || fail "deploy: $(cat deploy.json)"
grep -q "deprecated" deploy.err || fail "no deprecation warning: $(cat deploy.err)"
grep -q "virtualMachineScaleSets '$POOL': Succeeded" deploy.err || fail "no progress: $(cat deploy.err)"
[[ "$(dsp pool show "$POOL" -o json | python_json "print(sum(i['phase'] == 'Ready' for i in data['instances']))")" == 2 ]] \
  || fail "not 2 Ready instances after Succeeded"
pass "group deployment create: Succeeded with 2 Ready instances"

# ssh on the sample's SSH rule, with the template's admin and password.
# (An instance applies its users' configuration once Ready: wait for it.)
ssh_admin() {
  SSHPASS="$PASSWORD" sshpass -e ssh -p "$SSH_PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ConnectTimeout=20 -o PreferredAuthentications=password -o PubkeyAuthentication=no \
    "dsvmuser@$FRONT" 'hostname; test -d ~/notebooks/remote && echo remote'
}
wait_until 60 "ssh as dsvmuser with the template's password" ssh_admin >/dev/null
host=$(ssh_admin)
[[ "$host" == "$POOL"[01]$'\n'remote ]] || fail "ssh answered: $host"
pass "ssh on port $SSH_PORT reaches an instance as the template's admin, ~/notebooks/remote there"
code=$(curl -sk -o /dev/null -w '%{http_code}' "https://$FRONT:$JUPYTER_PORT/hub/login")
[[ "$code" == 200 ]] || fail "Jupyter login page: HTTP $code"
pass "Jupyter answers on port $JUPYTER_PORT"

# Nothing secret stored or logged.
for f in "$DATA"/state.db* "$WORK/server.log" deploy.json; do
  if grep -qa -e "$PASSWORD" -e "$KEY" "$f"; then fail "a secret is in $f"; fi
done
pass "the password and the storage key are in no stored file and no log"

# Redeploying changes nothing; instanceCount 3 scales.
# (The template from a local http URL this time, as --template-uri takes it.)
generation=$(dsp pool show "$POOL" -o json | python_json "print(data['generation'])")
HTTP_PORT=$(free_port)
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$WORK" "$HTTP_PORT" >http.log 2>&1 &
HTTP_PID=$!
trap 'kill "$HTTP_PID" 2>/dev/null || true; cleanup' EXIT
serving() { curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/dsvm-vmss-cluster.json"; }
wait_until 30 "the template served over http" serving
dsp deployment group create -g RG -n again -u "http://127.0.0.1:$HTTP_PORT/dsvm-vmss-cluster.json" \
  -p @dsvm-vmss-cluster.parameters.json >again.json 2>again.err || fail "redeploy: $(cat again.err)"
kill "$HTTP_PID"; wait "$HTTP_PID" 2>/dev/null || true
grep -q "\"uri\": \"http://127.0.0.1:$HTTP_PORT/dsvm-vmss-cluster.json\"" again.json || fail "no templateLink: $(cat again.json)"
[[ "$(dsp pool show "$POOL" -o json | python_json "print(data['generation'])")" == "$generation" ]] \
  || fail "redeploying changed the pool"
dsp deployment operation group list -g RG -n again -o tsv | awk -F'\t' '$5 != "OK" {exit 1}' \
  || fail "redeploy operations: $(dsp deployment operation group list -g RG -n again -o tsv)"
pass "redeploying the same template (from an http URL) changes nothing"
dsp deployment group create -g RG -n scale -f dsvm-vmss-cluster.json -p @dsvm-vmss-cluster.parameters.json \
  instanceCount=3 >/dev/null 2>scale.err || fail "scale: $(cat scale.err)"
[[ "$(dsp pool show "$POOL" -o json | python_json "print(sum(i['phase'] == 'Ready' for i in data['instances']))")" == 3 ]] \
  || fail "not 3 Ready instances"
pass "instanceCount 3 scales the pool"

# A bad parameter: az's error, nothing changed.
before=$(dsp deployment group list -g RG -o tsv | wc -l)
if dsp deployment group create -g RG -n bad -f dsvm-vmss-cluster.json -p @dsvm-vmss-cluster.parameters.json \
    vmssName=waytoolongname >/dev/null 2>bad.err; then
  fail "a vmssName over maxLength 9 was deployed"
fi
grep -q "InvalidTemplate: .*Length of the value should be less than or equal to '9'" bad.err || fail "bad: $(cat bad.err)"
[[ "$(dsp deployment group list -g RG -o tsv | wc -l)" == "$before" ]] || fail "the bad deployment left a record"
[[ "$(dsp pool list -o json | python_json "print(len(data['pools']))")" == 1 ]] || fail "the bad deployment made a pool"
pass "a bad parameter: az's error, nothing made"

# Deleting the group deletes its pool.
dsp group delete -n RG --yes || fail "group delete"
[[ "$(dsp group exists -n RG)" == false ]] || fail "the group still exists"
gone() { ! dsp pool show "$POOL" >/dev/null 2>&1; }
wait_until 120 "pool $POOL deleted" gone
nothing_left() { [[ -z "$(leftovers "$POOL")" ]]; }
wait_until 60 "nothing of pool $POOL left on the host" nothing_left
pass "group delete --yes removes the pool, and nothing is left"

finish
