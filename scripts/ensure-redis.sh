#!/usr/bin/env bash
# Makes sure `redis-server` is installed (Debian's package), for the cluster tests: they start their
# own redis-server processes on loopback with random ports and stop them. Idempotent: does nothing
# when redis-server is already on the PATH. Valkey works too (`valkey-server` is used if present).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 || command -v valkey-server >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-redis: redis-server is missing and apt-get is not available; install Redis or Valkey by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "ensure-redis: installing redis-server with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
# Another process may hold the dpkg lock for a while (CI images install at boot): wait for it rather than fail.
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends redis-server >/dev/null
# Debian starts a system-wide redis on :6379 after install; the tests do not use it.
redis-server --version
