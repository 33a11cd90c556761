#!/usr/bin/env bash
# make-certs.sh [OUTDIR]  (default OUTDIR=certs)
#
# Generates THROWAWAY DEVELOPMENT CERTIFICATES for oidc-gateway's local runs and
# tests (gateway TLS listener, test IdP HTTPS listener, mTLS client auth).
# Never use them for anything real; never commit the private keys.
#
# Files (PEM; keys are EC P-256, mode 0600; validity 825 days):
#   ca.crt / ca.key                          dev CA "oidc-gateway dev CA"
#   gateway.crt / gateway.key                server cert (localhost, 127.0.0.1, ::1), signed by ca
#   client.crt / client.key                  client cert, subject /OU=IT/CN=JohnDoe
#                                            (RFC 4514 string "CN=JohnDoe,OU=IT"), signed by ca
#   other-ca.crt / other-ca.key              a second, unrelated CA
#   other-client.crt / other-client.key      same subject as client.crt, signed by other-ca
#   self-signed-client.crt / .key            self-signed client cert (self_signed_tls_client_auth)
#
# Idempotent: does nothing when OUTDIR/ca.crt exists, unless FORCE=1.
set -euo pipefail

OUTDIR="${1:-certs}"
DAYS=825

if [[ -f "$OUTDIR/ca.crt" && "${FORCE:-0}" != "1" ]]; then
  echo "make-certs: $OUTDIR/ca.crt exists, skipping (FORCE=1 to regenerate)"
  exit 0
fi

command -v openssl >/dev/null || { echo "make-certs: openssl not found" >&2; exit 1; }

mkdir -p "$OUTDIR"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
umask 077

# Minimal config so nothing from the system openssl.cnf leaks into the certs.
cat >"$WORK/openssl.cnf" <<'EOF'
[ req ]
distinguished_name = dn
prompt             = no
[ dn ]
[ v3_ca ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[ v3_server ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ v3_client ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ v3_self_client ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
EOF

serial() { echo "0x$(openssl rand -hex 16 | sed 's/^./7/')"; }

genkey() { # name
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$1.key" 2>/dev/null
}

self_signed() { # name subject extensions
  genkey "$1"
  openssl req -config "$WORK/openssl.cnf" -new -x509 -key "$WORK/$1.key" -subj "$2" \
    -extensions "$3" -days "$DAYS" -sha256 -set_serial "$(serial)" -out "$WORK/$1.crt"
}

signed() { # name subject extensions ca
  genkey "$1"
  openssl req -config "$WORK/openssl.cnf" -new -key "$WORK/$1.key" -subj "$2" -out "$WORK/$1.csr"
  openssl x509 -req -in "$WORK/$1.csr" -CA "$WORK/$4.crt" -CAkey "$WORK/$4.key" \
    -extfile "$WORK/openssl.cnf" -extensions "$3" -days "$DAYS" -sha256 \
    -set_serial "$(serial)" -out "$WORK/$1.crt" 2>/dev/null
}

self_signed ca                 "/O=oidc-gateway/CN=oidc-gateway dev CA"       v3_ca
signed      gateway            "/O=oidc-gateway/CN=localhost"                 v3_server ca
signed      client             "/OU=IT/CN=JohnDoe"                            v3_client ca
self_signed other-ca           "/O=unrelated/CN=oidc-gateway other dev CA"    v3_ca
signed      other-client       "/OU=IT/CN=JohnDoe"                            v3_client other-ca
self_signed self-signed-client "/OU=IT/CN=JohnDoe self-signed"                v3_self_client

# sanity checks
openssl verify -CAfile "$WORK/ca.crt" "$WORK/gateway.crt" "$WORK/client.crt" >/dev/null
openssl verify -CAfile "$WORK/other-ca.crt" "$WORK/other-client.crt" >/dev/null
if openssl verify -CAfile "$WORK/ca.crt" "$WORK/other-client.crt" >/dev/null 2>&1; then
  echo "make-certs: other-client.crt unexpectedly verifies against ca.crt" >&2; exit 1
fi
dn="$(openssl x509 -in "$WORK/client.crt" -noout -subject -nameopt RFC2253)"
[[ "$dn" == "subject=CN=JohnDoe,OU=IT" ]] || { echo "make-certs: unexpected client DN: $dn" >&2; exit 1; }

for name in ca gateway client other-ca other-client self-signed-client; do
  install -m 0644 "$WORK/$name.crt" "$OUTDIR/$name.crt"
  install -m 0600 "$WORK/$name.key" "$OUTDIR/$name.key"
  echo "make-certs: wrote $OUTDIR/$name.crt"
  echo "make-certs: wrote $OUTDIR/$name.key"
done
