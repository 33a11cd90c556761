#!/usr/bin/env bash
# Makes sure nginx and caddy are installed (Debian's packages), for the decision-mode suite: it
# starts its own nginx (auth_request) and caddy (forward_auth) on loopback with random ports, as
# real front proxies asking the gateway's decision listener. Idempotent.
set -euo pipefail
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v caddy >/dev/null 2>&1 || missing+=(caddy)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-front-proxies: ${missing[*]} missing and apt-get is not available; install them by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "ensure-front-proxies: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
# Another apt-get may hold the lock for a while (the machine's other installs): wait for it.
for _ in $(seq 1 60); do
  if $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then exit 0; fi
  sleep 5
done
exit 1
