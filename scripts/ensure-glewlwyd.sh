#!/usr/bin/env bash
# Makes sure Glewlwyd (Debian's `glewlwyd` package, an OpenID Provider in C) is installed, for the
# interop suites: they start their own glewlwyd processes on loopback with random ports and a
# throwaway SQLite database (test/support/glewlwyd-process.ts). Idempotent: does nothing when the
# binary and its SQLite schema are already there.
set -euo pipefail
SCHEMA=/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3
have() { command -v glewlwyd >/dev/null 2>&1 && [ -f "$SCHEMA" ]; }
if have; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-glewlwyd: glewlwyd is missing and apt-get is not available; install Glewlwyd 2.7 by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "ensure-glewlwyd: installing glewlwyd with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
# "No configuration": no dbconfig database (the suites bring their own SQLite file), no service set up.
echo "glewlwyd glewlwyd/config_type select No configuration" | $SUDO debconf-set-selections
# The package would start a system-wide service (port 4593) the suites do not use: deny service
# starts during the install, as container images do, unless a policy is already in place.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null && $SUDO chmod +x "$POLICY"
  trap '$SUDO rm -f "$POLICY"' EXIT
fi
# Another process may hold the dpkg lock for a while: wait for it rather than fail.
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends glewlwyd >/dev/null
glewlwyd --version 2>&1 | head -1 || true
