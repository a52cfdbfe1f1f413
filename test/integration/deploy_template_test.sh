#!/usr/bin/env bash
# The second test template of issue 15 (templates/pool-with-files.json) on
# real LXC and sshd: a storage account whose name comes from uniqueString,
# its retention and two shares made by a copy loop; a scale set behind a
# load balancer with an SSH rule and an inbound NAT pool, customData (a
# shell script) and a CustomScriptForLinux extension whose script is a
# file next to the template (a relative fileUri, sent by the CLI); outputs that use
# reference(), listKeys() (a key shows as [secure]) and copy loops; a
# network security group on the subnet (SSH from one address, one port
# closed between instances). Then: the NAT pool's ports reach each
# instance by index, each instance ran the script and then the extension,
# the outputs are what the host made, SSH from another address is reset at
# the gateway and the closed port is dropped on the bridge, a share of the
# loop mounts in an instance with the key `keys list` shows, and deleting
# the group keeps the shares, deleted.
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
[[ "$(out deniedRules)" == "['deny-vnet-8080']" ]] || fail "deniedRules: $(out deniedRules)"
KEY=$(dsp storage account keys list -n "$ACCOUNT" -o tsv | awk -F'\t' '$1 == "key1" {print $3}')
if grep -qF -e "$KEY" deploy.json "$WORK/server.log"; then fail "the account's key is in the deployment's answer or the log"; fi
pass "deployed: outputs from reference(), listKeys() (its key shown as [secure]) and copy loops"

# The autoscale setting is kept with the pool, and the deployment says it is
# not executed yet.
grep -q "autoscaleSettings '$POOL-autoscale'.*not executed yet" deploy.err || fail "no warning for the autoscale setting: $(cat deploy.err)"
profiles=$(dsp pool show "$POOL" -o json | python_json "print([p['name'] for p in data['spec']['autoscale']['profiles']])")
[[ "$profiles" == "['busy hours', 'default']" ]] || fail "the pool's autoscale profiles: $profiles"
pass "the autoscale setting is kept with the pool (not executed yet, as the deployment warns)"

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

# The network security group. At the gateway: SSH is allowed from
# 127.0.0.1 only (the address the other ssh calls come from); another
# client address is reset at once, before it reaches any instance (the
# gateway counts it; ssh's own words for a reset vary with its timing).
denied_before=$(metric dspool_gateway_denied_total)
SSHPASS="$PASSWORD" sshpass -e ssh -p "$NAT_START" -b 127.0.0.3 -o StrictHostKeyChecking=no \
  -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=20 "dsadmin@$FRONT" true 2>/dev/null \
  && fail "ssh from 127.0.0.3 was let in"
[[ "$(metric dspool_gateway_denied_total)" == $((denied_before + 1)) ]] \
  || fail "ssh from 127.0.0.3 failed, but not denied by the group: $denied_before → $(metric dspool_gateway_denied_total)"
# On the bridge: instance 0 reaches instance 1's port 8081 (the default
# AllowVnetInBound) but not 8080 (deny-vnet-8080): dropped, so the connect
# hangs until `timeout` ends it (124), where a closed port would refuse (1).
IP1="${SUBNET%.0/24}.3"
ssh_at "$((NAT_START + 1))" "for p in 8080 8081; do setsid nohup python3 -m http.server \$p >/dev/null 2>&1 & done" \
  || fail "starting two servers in instance 1"
listening() { [[ "$(ssh_at "$((NAT_START + 1))" "ss -Hltn '( sport = :8080 or sport = :8081 )' | wc -l")" == 2 ]]; }
wait_until 60 "instance 1 listening on 8080 and 8081" listening
connect_from_0() { ssh_at "$NAT_START" "timeout 5 bash -c 'echo > /dev/tcp/$IP1/$1' 2>/dev/null; echo \$?"; }
[[ "$(connect_from_0 8081)" == 0 ]] || fail "instance 0 to $IP1:8081: $(connect_from_0 8081)"
[[ "$(connect_from_0 8080)" == 124 ]] || fail "instance 0 to $IP1:8080: expected a drop (124), got $(connect_from_0 8080)"
pass "the group's rules: SSH from another address is reset at the gateway; port 8080 is dropped between instances"

# Redeploying with another port closed changes the rules in place: the same
# instances, the bridge's table replaced by the reconcile loop.
before=$(dsp instance list --pool "$POOL" -o json | python_json "print(sorted(i['id'] for i in data['instances']))")
dsp deployment group create -g TPL -f "$TEMPLATE" -p poolName="$POOL" adminPassword="$PASSWORD" \
  sshPort="$SSH_PORT" natStartPort="$NAT_START" subnetPrefix="$SUBNET" dnsLabel=lab 'deniedPorts=[8081]' \
  >redeploy.json 2>redeploy.err || fail "redeploy with port 8081 closed: $(cat redeploy.err)"
swapped() { [[ "$(connect_from_0 8080)" == 0 && "$(connect_from_0 8081)" == 124 ]]; }
wait_until 60 "8080 open and 8081 dropped between instances" swapped
after=$(dsp instance list --pool "$POOL" -o json | python_json "print(sorted(i['id'] for i in data['instances']))")
[[ "$after" == "$before" ]] || fail "the redeploy replaced instances: $before → $after"
dsp events | grep -q "pool.security.*pool/$POOL" || fail "no pool.security event: $(dsp events 2>&1 | tail -3)"
pass "a redeploy with another port closed changes the rules in place, keeping the instances"

# customData ran first, as cloud-init's script form, then the older
# CustomScriptForLinux extension, in each instance.
for port in "$NAT_START" "$((NAT_START + 1))"; do
  [[ "$(ssh_at "$port" cat /etc/provisioned)" == "custom-data"$'\n'"extension of $POOL" ]] \
    || fail "instance on $port: $(ssh_at "$port" cat /etc/provisioned 2>&1)"
done
grep -q "Sending the files next to the template that its fileUris name: scripts/provision.sh" deploy.err \
  || fail "the CLI did not say it sent scripts/provision.sh: $(cat deploy.err)"
pass "customData's script, then a CustomScriptForLinux extension with a script sent from next to the template, ran in each instance before it was Ready"

out=$(ssh_at "$NAT_START" "sudo mkdir -p /srv/projects && sudo mount -t cifs //$ACCOUNT.file.core.windows.net/projects \
  /srv/projects -o username=$ACCOUNT,password=$KEY 2>&1; echo hi >/srv/projects/notebooks/dsadmin/note.txt && echo written")
[[ "$out" == written ]] || fail "mounting the loop's share: $out"
[[ "$(cat "$WORK/storage/$ACCOUNT/shares/projects/notebooks/dsadmin/note.txt")" == hi ]] || fail "not on the host"
pass "a share of the loop mounts with the account's key, and dsadmin writes there"

dsp group delete -n TPL --yes || fail "group delete"
gone() { ! dsp pool show "$POOL" >/dev/null 2>&1; }
wait_until 120 "pool $POOL deleted" gone
[[ -d "$WORK/storage/$ACCOUNT/deleted/projects" ]] || fail "the deleted share's files are gone"
nothing_left() { [[ -z "$(leftovers "$POOL")" ]]; }
wait_until 60 "nothing of pool $POOL left on the host (its bridge's security table included)" nothing_left
pass "group delete: the pool goes; the shares' files are kept, deleted"
finish
