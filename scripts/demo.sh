#!/usr/bin/env bash
# Sets up this machine, builds dspool, starts the server and brings up the
# demo pool of examples/demo-pool.json: two LXC instances sharing
# /srv/dspool/demo-share, with the admin user "dsvmuser" and your SSH key,
# behind one address: port 2200 of this host (NAT ports 50000+k reach
# instance k).
# Run as root. Safe to run again: it reuses what is already there.
#
# `scripts/demo.sh teardown` takes it all down again: deletes the pool (and
# waits until its instances and bridge are gone), stops the server, and
# says what it keeps (the share's files, the server's data directory).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == teardown ]]; then
  if ! dspool status >/dev/null 2>&1; then
    echo "demo: no dspool server answers: nothing to tear down"
    exit 0
  fi
  if dspool pool show demo >/dev/null 2>&1; then
    dspool pool delete demo
    echo "demo: waiting for the instances and the bridge to go"
    for _ in $(seq 600); do dspool pool show demo >/dev/null 2>&1 || break; sleep 0.2; done
    if dspool pool show demo >/dev/null 2>&1; then
      echo "demo: the pool is still being deleted; see: dspool pool show demo" >&2
      exit 1
    fi
  fi
  others=$(dspool pool list -o json | /usr/bin/python3 -c "import json, sys; print(len(json.load(sys.stdin)['pools']))")
  if [[ "$others" != 0 ]]; then
    echo "demo: the demo pool is gone; the server keeps running for the other $others pool(s) (dspool pool list)"
    exit 0
  fi
  dspool server stop --gateway
  cat <<MSG
demo: torn down. Kept, for you to remove if you want them gone:
  /srv/dspool/demo-share        the users' homes and notebooks
  /var/lib/dspool               the server's state (users, events, keys)
  ~/.ssh/dspool_demo{,.pub}     the demo's SSH key
  /usr/local/bin/dspool         the installed binary
MSG
  exit 0
fi
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
elif ! dspool user show dsvmuser | grep -qF "$(ssh-keygen -lf "$key.pub" | awk '{print $2}')"; then
  # The pool outlived the key it was made with: let this key in too.
  dspool user key add dsvmuser "$key.pub"
fi

echo "demo: waiting for the instances to be ready and healthy"
for _ in $(seq 120); do
  healthy=$(dspool instance list --pool demo -o json | grep -c '"state": "healthy"' || true)
  [[ "$healthy" -ge 2 ]] && break
  sleep 0.5
done
dspool pool show demo
# A NAT port that reaches an instance that exists now (indexes grow as
# instances are replaced).
nat=$(dspool instance list --pool demo -o json | /usr/bin/python3 -c "
import json, sys
ports = [p['port'] for i in json.load(sys.stdin)['instances'] for p in i.get('natPorts', [])]
print(ports[-1] if ports else 50001)")
cat <<MSG

The demo pool is up behind one address, port 2200 of this host. Log in with
the same account, host key and files wherever you land (the pool has one host
key: HostKeyAlias lets the front port and every NAT port share one
known_hosts entry):
  ssh -i $key -o HostKeyAlias=dspool-demo -p 2200 dsvmuser@localhost
A given instance, by its NAT port (50000 + its index, as in INDEX above):
  ssh -i $key -o HostKeyAlias=dspool-demo -p $nat dsvmuser@localhost
Your notebooks folder is ~/notebooks/remote on every instance.
Jupyter, same address: give yourself a password, then open https://localhost:8000
  dspool user passwd dsvmuser --password-stdin   (the certificate is self-signed)
Add a teammate:  dspool user add alice --ssh-key alice.pub
Scale:           dspool pool scale demo --count 3   (or 0: the next ssh wakes it)
Drain one:       dspool instance drain ID           (no new sessions; open ones go on)
Tear down:       ./scripts/demo.sh teardown         (deletes the pool, stops the server and its gateway)
MSG
