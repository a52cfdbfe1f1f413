#!/usr/bin/env bash
# The second test template of issue 15 (templates/pool-with-files.json) on
# real LXC and sshd: a storage account whose name comes from uniqueString,
# its retention and two shares made by a copy loop; a scale set behind a
# load balancer with an SSH rule and an inbound NAT pool, customData (a
# shell script) and a CustomScriptForLinux extension; outputs that use
# reference(), listKeys() (a key shows as [secure]) and copy loops. Then:
# the NAT pool's ports reach each instance by index, each instance ran the
# script and then the extension, the outputs are what
# the host made, a share of the loop mounts in an instance with the key
# `keys list` shows, and deleting the group keeps the shares, deleted.
DSPOOL=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
setup_test deploy_template
TEMPLATE=$(realpath "$(dirname "$0")/templates/pool-with-files.json")
POOL="tpl$RANDOM"
POOL=${POOL:0:8}
PASSWORD="Template-Passw0rd-$RANDOM"
FRONT="127.0.0.$(shuf -i 20-250 -n 1)"
SSH_PORT=$(free_port)
NAT_START=$(free_port_pair)
SUBNET=$(free_subnet)

SERVER_ARGS=(--front-address "$FRONT" --storage-root "$WORK/storage" --dns-domain pools.test)
start_server
cd "$WORK"
dsp group create -n TPL -l local >/dev/null || fail "group create"
dsp deployment group create -g TPL -f "$TEMPLATE" -p poolName="$POOL" adminPassword="$PASSWORD" \
  sshPort="$SSH_PORT" natStartPort="$NAT_START" subnetPrefix="$SUBNET" dnsLabel=lab >deploy.json 2>deploy.err \
  || fail "deploy: $(cat deploy.err)"
out() { python_json "print(data['properties']['outputs']['$1']['value'])" <deploy.json; }
[[ "$(python_json "print(data['properties']['provisioningState'])" <deploy.json)" == Succeeded ]] || fail "$(cat deploy.json)"
ACCOUNT=$(out storageAccount)
[[ "$ACCOUNT" =~ ^files[a-z0-9]{13}$ ]] || fail "account name from uniqueString: '$ACCOUNT'"
[[ "$(out fileEndpoint)" == "https://$ACCOUNT.file.core.windows.net/" ]] || fail "fileEndpoint: $(out fileEndpoint)"
[[ "$(out keyNames)" == "['key1', 'key2']" ]] || fail "keyNames: $(out keyNames)"
[[ "$(out firstKey)" == "[secure]" ]] || fail "a key shown in an output: $(out firstKey)"
[[ "$(out fqdn)" == lab.pools.test ]] || fail "fqdn: $(out fqdn)"
[[ "$(out shares)" == "['//$ACCOUNT.file.core.windows.net/projects', '//$ACCOUNT.file.core.windows.net/datasets']" ]] \
  || fail "shares: $(out shares)"
[[ "$(out adminPorts)" == "[$NAT_START, $((NAT_START + 1))]" ]] || fail "adminPorts: $(out adminPorts)"
KEY=$(dsp storage account keys list -n "$ACCOUNT" -o tsv | awk -F'\t' '$1 == "key1" {print $3}')
if grep -qF -e "$KEY" deploy.json "$WORK/server.log"; then fail "the account's key is in the deployment's answer or the log"; fi
pass "deployed: outputs from reference(), listKeys() (its key shown as [secure]) and copy loops"

shares=$(dsp storage share-rm list --storage-account "$ACCOUNT" -o tsv | cut -f1,2 | sort | tr '\t\n' ': ')
[[ "$shares" == "datasets:20 projects:10 " ]] || fail "the copy loop's shares: '$shares'"
retention=$(dsp storage account show -n "$ACCOUNT" -o json | python_json "print(data['shareDeleteRetentionPolicy']['days'])")
[[ "$retention" == 3 ]] || fail "fileServices retention: $retention"
pass "the copy loop made both shares with their quotas; fileServices set the retention"

ssh_at() { ssh_password dsadmin "$FRONT" "$@"; }  # port command
reachable() { ssh_at "$NAT_START" true; }
wait_until 60 "ssh on the NAT pool's first port" reachable
[[ "$(ssh_at "$NAT_START" hostname)" == "${POOL}0" ]] || fail "NAT port $NAT_START: $(ssh_at "$NAT_START" hostname)"
[[ "$(ssh_at "$((NAT_START + 1))" hostname)" == "${POOL}1" ]] || fail "NAT port $((NAT_START + 1))"
[[ "$(ssh_at "$SSH_PORT" hostname)" == "$POOL"[01] ]] || fail "the SSH rule"
pass "the NAT pool's ports reach instances 0 and 1; the SSH rule reaches one"

# customData ran first, as cloud-init's script form, then the older
# CustomScriptForLinux extension, in each instance.
for port in "$NAT_START" "$((NAT_START + 1))"; do
  [[ "$(ssh_at "$port" cat /etc/provisioned)" == "custom-data"$'\n'"extension of $POOL" ]] \
    || fail "instance on $port: $(ssh_at "$port" cat /etc/provisioned 2>&1)"
done
pass "customData's script, then a CustomScriptForLinux extension, ran in each instance before it was Ready"

out=$(ssh_at "$NAT_START" "sudo mkdir -p /srv/projects && sudo mount -t cifs //$ACCOUNT.file.core.windows.net/projects \
  /srv/projects -o username=$ACCOUNT,password=$KEY 2>&1; echo hi >/srv/projects/notebooks/dsadmin/note.txt && echo written")
[[ "$out" == written ]] || fail "mounting the loop's share: $out"
[[ "$(cat "$WORK/storage/$ACCOUNT/shares/projects/notebooks/dsadmin/note.txt")" == hi ]] || fail "not on the host"
pass "a share of the loop mounts with the account's key, and dsadmin writes there"

dsp group delete -n TPL --yes || fail "group delete"
gone() { ! dsp pool show "$POOL" >/dev/null 2>&1; }
wait_until 120 "pool $POOL deleted" gone
[[ -d "$WORK/storage/$ACCOUNT/deleted/projects" ]] || fail "the deleted share's files are gone"
pass "group delete: the pool goes; the shares' files are kept, deleted"
finish
