#!/usr/bin/env bash
# Installs the Debian 12 packages dspool needs to build, test and run.
# Idempotent: installs only what is missing. Run as root.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libboost-dev libboost-system-dev
  libsqlite3-dev libsodium-dev libcrypt-dev libssl-dev libicu-dev
  # run: containers, networking, the instances' services (sshpass: tests)
  lxc lxc-dev uidmap iproute2 nftables openssh-server openssh-client sudo sqlite3 sshpass curl python3 openssl
  # the instances' per-user Jupyter (instances run on the host's filesystem):
  # Notebook 6.4 and the Python kernel; websocket-client for the tests
  jupyter-notebook python3-ipykernel python3-websocket
  # tests: libfaketime steps the server's wall clock alone (clock_step_test.sh)
  libfaketime
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [[ $EUID -ne 0 ]]; then
  echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
