#!/usr/bin/env bash
# The reference's deployment (issue 15) on real LXC, sshd and the Jupyter
# frontend: a storage account and share made first, then `dspool group
# create` and the deprecated `dspool group deployment create` exactly as the
# reference types them, with the sample template of examples/azure-dsvm/ and
# its parameters file (placeholders filled), its CustomScript extension and
# all. The extension's script is on GitHub, which these machines cannot
# reach: the server's --mirror fetches it from a local HTTP server instead,
# which serves dspool's own equivalent (examples/azure-dsvm/mountazurefiles.sh,
# same arguments). Then: each instance ran the script as root before it was
# Ready (its status shown per instance), so the share is mounted (`mount -t
# cifs` with the account's key) and ~/notebooks/remote links to it, and its
# files land on the host with the user's uid; a wrong key is refused; ssh on
# port 22 with the template's password and Jupyter on 8000 reach an instance;
# redeploying changes nothing; instanceCount 3 scales (the new instance runs
# the script too); a bad parameter, or a script that cannot be fetched,
# leaves nothing behind; no secret is
# logged or shown; `group delete --yes` removes everything, and the share's
# files are restored from the deleted share.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_test deploy
SAMPLES=$(realpath "$(dirname "$0")/../../examples/azure-dsvm")
POOL="dep$RANDOM"
POOL=${POOL:0:8}
PASSWORD="Deploy-Passw0rd-$RANDOM"
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

# The local HTTP server: the mirror of the script's GitHub address, and
# later the template for --template-uri.
serve_mount_script
SERVER_ARGS=(--front-address "$FRONT" --storage-root "$WORK/storage" --mirror "$MIRROR")
start_server
cd "$WORK"

dsp group create --name RG --location local >group.json
grep -q '"provisioningState": "Succeeded"' group.json || fail "group create: $(cat group.json)"
pass "group create"

# The storage account and share the reference has the user make first.
dsp storage account create -n dspoolfiles -g RG >account.json || fail "storage account create"
KEY=$(dsp storage account keys list -n dspoolfiles -o tsv | awk -F'\t' '$1 == "key1" {print $3}')
[[ ${#KEY} == 88 ]] || fail "no 88-character key1: '$KEY'"
if grep -qF -e "$KEY" account.json; then fail "storage account create shows a key"; fi
dsp storage share create -n dsvmshare --account-name dspoolfiles --account-key "$KEY" --quota 10 >share.json \
  || fail "storage share create"
grep -q '"created": true' share.json || fail "share create: $(cat share.json)"
[[ -d "$WORK/storage/dspoolfiles/shares/dsvmshare" ]] || fail "no share directory on the host"
pass "storage account (two keys, shown by keys list only) and share made"

/usr/bin/python3 - "$SAMPLES" "$WORK" "$POOL" "$PASSWORD" "$KEY" "$SSH_PORT" "$JUPYTER_PORT" "$SUBNET" <<'PY'
import json, sys
samples, work, pool, password, key, ssh_port, jupyter_port, subnet = sys.argv[1:]
t = json.load(open(f"{samples}/dsvm-vmss-cluster.json"))
if subnet != "10.0.0.0/24":
    t["variables"]["addressPrefix"] = t["variables"]["subnetPrefix"] = subnet
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

dsp group deployment create --resource-group RG --template-file dsvm-vmss-cluster.json \
  --parameters @dsvm-vmss-cluster.parameters.json >deploy.json 2>deploy.err || fail "deploy: $(cat deploy.err)"
grep -q '"provisioningState": "Succeeded"' deploy.json || fail "deploy: $(cat deploy.json)"
grep -q "deprecated" deploy.err || fail "no deprecation warning: $(cat deploy.err)"
grep -q "virtualMachineScaleSets '$POOL': Succeeded" deploy.err || fail "no progress: $(cat deploy.err)"
[[ "$(dsp pool show "$POOL" -o json | python_json "print(sum(i['phase'] == 'Ready' for i in data['instances']))")" == 2 ]] \
  || fail "not 2 Ready instances after Succeeded"
pass "group deployment create: Succeeded with 2 Ready instances"

# Each instance ran the extension before it was Ready, and says so.
statuses=$(dsp pool show "$POOL" -o json | python_json "
for i in data['instances']:
    e = i['report']['extensions'][0]
    print(e['name'], e['state'], e['message'].splitlines()[0])")
[[ "$statuses" == "filesextension Succeeded Enable succeeded"$'\n'"filesextension Succeeded Enable succeeded" ]] \
  || fail "extension statuses: $statuses"
pass "both instances ran the sample's CustomScript: Succeeded, shown per instance"

# ssh on the sample's SSH rule, with the template's admin and password.
# (An instance applies its users' configuration once Ready: wait for it.)
as_admin() { ssh_password dsvmuser "$FRONT" "$SSH_PORT" "$@"; }
ssh_admin() { as_admin 'hostname; echo $HOME; test -d ~/notebooks && echo notebooks'; }
wait_until 60 "ssh as dsvmuser with the template's password" ssh_admin >/dev/null
host=$(ssh_admin)
[[ "$host" == "$POOL"[01]$'\n'/home/dsvmuser$'\n'notebooks ]] || fail "ssh answered: $host"
pass "ssh on port $SSH_PORT reaches an instance as the template's admin, home /home/dsvmuser with ~/notebooks"

# The sample's script, run by the extension, mounted the share and linked it.
listing=$(as_admin 'mountpoint /mnt/dsvmshare; readlink ~/notebooks/remote ~/dsvmshare;
  echo hello >~/notebooks/remote/from-instance.txt && cat ~/notebooks/remote/from-instance.txt')
[[ "$listing" == "/mnt/dsvmshare is a mountpoint"$'\n'/mnt/dsvmshare/notebooks/dsvmuser$'\n'/mnt/dsvmshare$'\n'hello ]] \
  || fail "after the extension: $listing"
written="$WORK/storage/dspoolfiles/shares/dsvmshare/notebooks/dsvmuser/from-instance.txt"
[[ "$(cat "$written")" == hello ]] || fail "the file is not on the host's share"
uid=$(dsp user show dsvmuser -o json | python_json "print(data['uid'])")
[[ "$(stat -c %u "$written")" == "$uid" ]] || fail "the file's owner is $(stat -c %u "$written"), not dsvmuser's $uid"
pass "the extension mounted the share; ~/notebooks/remote's files land on the host as dsvmuser's"

# The command (it holds the key) is root's alone in the instance, and
# shown nowhere: a protected setting.
out=$(as_admin 'cat /var/lib/waagent/dspool/filesextension.command 2>&1; ls /var/lib/waagent/custom-script/download/0 2>&1' || true)
grep -q "Permission denied" <<<"$out" || fail "a user reads the extension's command: $out"
grep -qF -e "$KEY" <<<"$out" && fail "a user sees the key"
spec=$(dsp pool show "$POOL" -o json | python_json "print(json.dumps(data['spec']['extensions']))")
grep -q '"protectedSettings": "\[secure\]"' <<<"$spec" || fail "pool show: $spec"
grep -qF -e "$KEY" <<<"$spec" && fail "pool show shows the key"
pass "the command with the key is a protected setting: root's only in the instance, [secure] in pool show"

# A wrong key: the mount helper refuses it.
out=$(as_admin "echo '$PASSWORD' | sudo -S -p '' sh -c 'mkdir -p /mnt/wrong; mount -t cifs //dspoolfiles.file.core.windows.net/dsvmshare /mnt/wrong -o vers=3.0,username=dspoolfiles,password=bm90LXRoZS1rZXk= 2>&1; echo status \$?'")
grep -q "mount error(13): Permission denied" <<<"$out" && grep -q "status 32" <<<"$out" || fail "a wrong key: $out"
as_admin 'mountpoint -q /mnt/wrong' && fail "a wrong key mounted the share"
pass "a wrong key: mount error(13): Permission denied, nothing mounted"

# A user added later finds their folder on the mounted share.
echo "Carol-Passw0rd-$RANDOM" | dsp user add carol --password-stdin >/dev/null || fail "user add carol"
carol_uid=$(dsp user show carol -o json | python_json "print(data['uid'])")
carol_folder() { [[ "$(stat -c %u "$WORK/storage/dspoolfiles/shares/dsvmshare/notebooks/carol" 2>/dev/null)" == "$carol_uid" ]]; }
wait_until 30 "notebooks/carol on the share" carol_folder
carol_linked() {
  [[ "$(as_admin "echo '$PASSWORD' | sudo -S -p '' readlink /home/carol/notebooks/remote" 2>/dev/null)" \
     == /mnt/dsvmshare/notebooks/carol ]]
}
wait_until 30 "carol's ~/notebooks/remote on the instance ssh reaches" carol_linked
pass "a user added later gets notebooks/<user> on the mounted share, and ~/notebooks/remote linked to it"

# Azure Files' NFS form: no key; the pool was deployed in the account's group.
dsp storage share-rm create -n nfsshare --storage-account dspoolfiles --enabled-protocols NFS >/dev/null \
  || fail "share-rm create nfsshare"
out=$(as_admin 'sudo mkdir -p /mnt/nfs && sudo mount -t nfs dspoolfiles.file.core.windows.net:/dspoolfiles/nfsshare /mnt/nfs \
  -o vers=4,minorversion=1,sec=sys 2>&1; mountpoint /mnt/nfs')
[[ "$out" == "/mnt/nfs is a mountpoint" ]] || fail "mount -t nfs: $out"
out=$(as_admin 'sudo mkdir -p /mnt/wrong && sudo mount -t nfs dspoolfiles.file.core.windows.net:/dspoolfiles/dsvmshare /mnt/wrong 2>&1; echo status $?')
grep -q "access denied by server" <<<"$out" && grep -q "status 32" <<<"$out" || fail "NFS on an SMB share: $out"
pass "mount -t nfs mounts an NFS share without a key; an SMB share is refused"
code=$(curl -sk -o /dev/null -w '%{http_code}' "https://$FRONT:$JUPYTER_PORT/hub/login")
[[ "$code" == 200 ]] || fail "Jupyter login page: HTTP $code"
pass "Jupyter answers on port $JUPYTER_PORT"

# Nothing secret stored or logged. (The account's keys are the server's to
# keep, in its root-only state file; the template's copy of one is not.)
for f in "$DATA"/state.db* "$WORK/server.log" deploy.json; do
  if grep -qa -e "$PASSWORD" "$f"; then fail "the password is in $f"; fi
done
for f in "$WORK/server.log" deploy.json; do
  if grep -qaF -e "$KEY" "$f"; then fail "the storage key is in $f"; fi
done
dsp deployment group show -g RG -n dsvm-vmss-cluster | grep -qF -e "$KEY" -e "$PASSWORD" && fail "deployment show shows a secret"
[[ "$(stat -c %a "$DATA/state.db")" == 600 ]] || fail "state.db is mode $(stat -c %a "$DATA/state.db")"
pass "the password is in no stored file and no log; the key in no log and no answer"

# Redeploying changes nothing; instanceCount 3 scales.
# (The template from a local http URL this time, as --template-uri takes it.)
generation=$(dsp pool show "$POOL" -o json | python_json "print(data['generation'])")
dsp deployment group create -g RG -n again -u "http://127.0.0.1:$HTTP_PORT/dsvm-vmss-cluster.json" \
  -p @dsvm-vmss-cluster.parameters.json >again.json 2>again.err || fail "redeploy: $(cat again.err)"
grep -q "\"uri\": \"http://127.0.0.1:$HTTP_PORT/dsvm-vmss-cluster.json\"" again.json || fail "no templateLink: $(cat again.json)"
[[ "$(dsp pool show "$POOL" -o json | python_json "print(data['generation'])")" == "$generation" ]] \
  || fail "redeploying changed the pool"
dsp deployment operation group list -g RG -n again -o tsv | awk -F'\t' '$5 != "OK" {exit 1}' \
  || fail "redeploy operations: $(dsp deployment operation group list -g RG -n again -o tsv)"
pass "redeploying the same template (from an http URL) changes nothing"
dsp deployment group create -g RG -n scale -f dsvm-vmss-cluster.json -p @dsvm-vmss-cluster.parameters.json \
  instanceCount=3 >/dev/null 2>scale.err || fail "scale: $(cat scale.err)"
[[ "$(dsp pool show "$POOL" -o json | python_json "print(sum(i['phase'] == 'Ready' and i['report']['extensions'][0]['state'] == 'Succeeded' for i in data['instances']))")" == 3 ]] \
  || fail "not 3 Ready instances that ran the extension"
pass "instanceCount 3 scales the pool; the new instance ran the extension too"

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


# Deleting the group deletes its pool and its storage account; the share is
# kept, deleted, and restored into the account made again.
dsp group delete -n RG --yes || fail "group delete"
[[ "$(dsp group exists -n RG)" == false ]] || fail "the group still exists"
gone() { ! dsp pool show "$POOL" >/dev/null 2>&1; }
wait_until 120 "pool $POOL deleted" gone
nothing_left() { [[ -z "$(leftovers "$POOL")" ]]; }
wait_until 60 "nothing of pool $POOL left on the host" nothing_left
dsp storage account show -n dspoolfiles >/dev/null 2>&1 && fail "the storage account outlived its group"
pass "group delete --yes removes the pool and the storage account, and nothing of the pool is left"

# An extension's file that cannot be fetched: the deployment fails naming
# it, before anything is made. (The storage account is gone with RG: the
# script's URL fails first.)
sed 's|Extensions/General/mountazurefiles.sh|Extensions/General/missing.sh|' dsvm-vmss-cluster.json >missing.json
dsp group create -n RG3 -l local >/dev/null || fail "group create RG3"
if dsp deployment group create -g RG3 -n missing -f missing.json -p @dsvm-vmss-cluster.parameters.json \
    vmssName=other >/dev/null 2>missing.err; then
  fail "a deployment whose script is missing succeeded"
fi
grep -q "extension 'filesextension': https://raw.githubusercontent.com/Azure/DataScienceVM/master/Extensions/General/missing.sh: mirrored to http://127.0.0.1:$HTTP_PORT/mirror/Extensions/General/missing.sh: GET .* answered HTTP 404" missing.err \
  || fail "missing script: $(cat missing.err)"
[[ "$(dsp deployment group list -g RG3)" == "[]" ]] || fail "the failed deployment left a record"
dsp pool show other >/dev/null 2>&1 && fail "the failed deployment made a pool"
dsp group delete -n RG3 --yes >/dev/null || fail "group delete RG3"
pass "an extension's file that cannot be fetched: the deployment fails naming the URL, nothing made"

dsp group create -n RG2 -l local >/dev/null || fail "group create RG2"
dsp storage account create -n dspoolfiles -g RG2 >/dev/null || fail "storage account create again"
version=$(dsp storage share-rm list --storage-account dspoolfiles --include-deleted -o tsv | awk -F'\t' '$1 == "dsvmshare" && $4 == "yes" {print $5}')
[[ -n "$version" ]] || fail "no deleted dsvmshare: $(dsp storage share-rm list --storage-account dspoolfiles --include-deleted -o tsv)"
dsp storage share-rm restore -n dsvmshare --storage-account dspoolfiles --deleted-version "$version" >/dev/null \
  || fail "restore"
[[ "$(cat "$WORK/storage/dspoolfiles/shares/dsvmshare/notebooks/dsvmuser/from-instance.txt")" == hello ]] \
  || fail "the restored share lost its file"
dsp group delete -n RG2 --yes >/dev/null || fail "group delete RG2"
pass "the deleted share, its files and all, is restored into the account made again"

finish
