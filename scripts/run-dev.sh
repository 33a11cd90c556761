#!/usr/bin/env bash
# `make run`: the echo upstream, the development IdP and the gateway, all stopped by Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BUN=node_modules/.bin/bun
pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

$BUN test/support/upstream.ts 9000 &
pids+=($!)

dist/oidc-gateway --config gateway.toml &
pids+=($!)

cat <<'MSG' >&2

  oidc-gateway is starting: proxy http://localhost:8000, admin http://127.0.0.1:8001
  Try:  curl -i http://localhost:8000/anything
  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
