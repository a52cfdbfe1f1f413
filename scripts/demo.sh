#!/usr/bin/env bash
# Sets up this machine, builds dspool, starts the server and brings up the
# demo pool of examples/demo-pool.json: two LXC instances sharing
# /srv/dspool/demo-share, with the admin user "dsvmuser" and your SSH key.
# Run as root. Safe to run again: it reuses what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
install -m 0755 build/apps/dspool/dspool /usr/local/bin/dspool

if ! dspool status >/dev/null 2>&1; then
  echo "demo: starting dspool server (log: /var/log/dspool-server.log)"
  nohup dspool server >>/var/log/dspool-server.log 2>&1 &
  for _ in $(seq 50); do dspool status >/dev/null 2>&1 && break; sleep 0.2; done
fi
dspool status >/dev/null || { echo "demo: the server did not start; see /var/log/dspool-server.log" >&2; exit 1; }

key="${HOME}/.ssh/dspool_demo"
if [[ ! -f "$key" ]]; then
  mkdir -p "${HOME}/.ssh" && chmod 700 "${HOME}/.ssh"
  ssh-keygen -q -t ed25519 -N "" -C "dspool demo" -f "$key"
fi
mkdir -p /srv/dspool/demo-share

if ! dspool pool show demo >/dev/null 2>&1; then
  spec="$(mktemp)"
  sed "s#REPLACED-BY-scripts/demo.sh#$(cat "$key.pub")#" examples/demo-pool.json >"$spec"
  dspool pool create -f "$spec"
  rm -f "$spec"
fi

echo "demo: waiting for the instances to be ready"
for _ in $(seq 120); do
  ready=$(dspool instance list --pool demo -o json | grep -c '"phase": "Ready"' || true)
  [[ "$ready" -ge 2 ]] && break
  sleep 0.5
done
dspool pool show demo
cat <<MSG

The demo pool is up. Log in to any instance with the same account and files:
  ssh -i $key dsvmuser@10.231.0.2
  ssh -i $key dsvmuser@10.231.0.3
Your notebooks folder is ~/notebooks/remote on every instance.
Add a teammate:  dspool user add alice --ssh-key alice.pub
Scale:           dspool pool scale demo --count 3
Tear down:       dspool pool delete demo
MSG
