#!/usr/bin/env bash
# `make run`: the echo upstream, the development IdP and the gateway, all stopped by Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BUN=node_modules/.bin/bun
IDP_PORT=8080
ISSUER="http://localhost:${IDP_PORT}/realms/master"
pids=()
tmp=$(mktemp -d)
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup INT TERM EXIT

$BUN test/support/upstream.ts 9000 &
pids+=($!)

# The development IdP (oidc-provider, a Keycloak-like realm with the guide's clients). It prints
# one "idp.ready" line on stdout once it listens; the gateway starts after that, so its first
# discovery finds the IdP.
node test/support/idp/main.mjs --port "$IDP_PORT" --host 127.0.0.1 --issuer-host localhost >"$tmp/idp.out" &
idp=$!
pids+=($idp)
for _ in $(seq 1 100); do
  grep -q '"idp.ready"' "$tmp/idp.out" 2>/dev/null && break
  if ! kill -0 "$idp" 2>/dev/null; then
    echo "run-dev: the development IdP did not start (is port ${IDP_PORT} in use?)" >&2
    exit 1
  fi
  sleep 0.1
done
grep -q '"idp.ready"' "$tmp/idp.out" || { echo "run-dev: the development IdP did not answer within 10 s" >&2; exit 1; }

dist/oidc-gateway --config gateway.toml &
pids+=($!)

cat <<MSG >&2

  oidc-gateway is starting: proxy http://localhost:8000, admin http://127.0.0.1:8001
  development IdP: ${ISSUER} (client "service", secret cf4c655a-0622-4ce6-a0de-d3353ef0b714;
    the gateway's own client "kong" uses private_key_jwt with the JWKS URL
    http://127.0.0.1:8001/openid-connect/jwks; user john / doe, see gateway.toml and docs/identity.md)

  Try:  curl -i -X GET http://localhost:8001/openid-connect/issuers
        curl http://localhost:8000/openid-connect --user service:cf4c655a-0622-4ce6-a0de-d3353ef0b714
  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
