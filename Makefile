# oidc-gateway. Quick start: `make run` (gateway + local IdP + echo upstream) and `make test`.
# Every target installs what it needs; nothing has to be installed by hand but Node and make.

SHELL := /bin/bash
BIN := node_modules/.bin
BUN := $(BIN)/bun
DENO := $(BIN)/deno
VERSION := $(shell node -p "require('./package.json').version")

# Every gateway log of a test run, with the secrets of its configs, for test/audit.
AUDIT_DIR := .tmp/audit

# The suites run a second time with the gateway under Deno (same files, GATEWAY_RUNTIME=deno).
DENO_INTEGRATION := test/integration/core-proxy.test.ts test/integration/client-credentials.test.ts test/integration/bearer.test.ts \
	test/integration/proof-of-possession.test.ts test/integration/identity.test.ts test/integration/upstream-oauth.test.ts \
	test/integration/operations.test.ts test/integration/glewlwyd.test.ts test/integration/vault.test.ts \
	test/integration/upstream-timeouts.test.ts test/integration/proxy-hot-path.test.ts test/integration/forward-proxy.test.ts test/integration/decision-mode.test.ts test/integration/trusted-proxies.test.ts \
	test/integration/load-balancing.test.ts test/integration/upstream-tls.test.ts test/integration/several-issuers.test.ts test/integration/websocket.test.ts test/integration/sni-certificates.test.ts
# Issue 18's token exchange.
DENO_INTEGRATION += test/integration/token-exchange.test.ts
# Issue 17's suites (consumers, claims, acl; rate-limiting with Redis).
DENO_INTEGRATION += test/integration/callers.test.ts test/integration/rate-limiting.test.ts
DENO_INTEGRATION += test/integration/introspection-settings.test.ts
DENO_INTEGRATION += test/integration/token-request-settings.test.ts
DENO_INTEGRATION += test/integration/nested-claim-headers.test.ts
DENO_INTEGRATION += test/integration/bearer-cookie.test.ts
DENO_INTEGRATION += test/integration/websocket-mtls.test.ts
DENO_INTEGRATION += test/integration/client-secret-jwt.test.ts
DENO_INTEGRATION += test/integration/introspection-jwt.test.ts
DENO_INTEGRATION += test/integration/bearer-header-name.test.ts

.PHONY: all deps build build-deno certs run test typecheck lint fmt unit integration e2e bench clean schema docs

all: build

# npm ci brings the runtimes too (bun and deno ship as npm packages).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.installed

dist/oidc-gateway: node_modules/.installed $(shell find src -name '*.ts') package.json Makefile
	@mkdir -p dist
	# --bytecode: the bundle is compiled to bytecode at build time, so a start skips parsing it (docs/benchmarks.md).
	# No bunfig.toml (its preload runs code) or .env is read from the working directory (docs/security.md).
	$(BUN) build --compile --bytecode --format=esm --no-compile-autoload-dotenv --no-compile-autoload-bunfig --minify-whitespace --minify-syntax --sourcemap src/main.ts --outfile dist/oidc-gateway
	@ls -lh dist/oidc-gateway | awk '{print "built " $$9 " (" $$5 ")"}'

build: dist/oidc-gateway

# A Deno single binary. Needs internet: `deno compile` downloads its `denort` base binary at
# build time, which the project's own machines cannot. The binary tested here is Bun's (above).
# --no-check: the type check is tsc's (make typecheck); Deno's checker lacks bun-types.
build-deno: deps
	@mkdir -p dist
	$(DENO) compile --no-check -A --unstable-no-legacy-abort --output dist/oidc-gateway-deno src/main.ts

# Throwaway development certificates (CA, gateway server cert, JohnDoe client cert, ...).
certs: certs/ca.crt
certs/ca.crt:
	bash scripts/make-certs.sh certs

# The demo: echo upstream on :9000, development IdP on :8080, gateway on :8000 (admin :8001).
run: build certs
	bash scripts/run-dev.sh

typecheck: deps
	$(BIN)/tsc --noEmit -p tsconfig.json

# Biome's formatter (check only) and linter, the import graph's rules (no circle, layers point one
# way: .dependency-cruiser.cjs) and knip (no unused file, export or dependency).
lint: deps
	$(BIN)/biome format
	$(BIN)/biome lint --error-on-warnings
	$(BIN)/depcruise --config .dependency-cruiser.cjs src
	$(BIN)/knip --no-progress

# Formats the tree as biome.jsonc says and applies the linter's safe fixes.
fmt: deps
	$(BIN)/biome format --write
	$(BIN)/biome lint --write

# Unit tests start no process; the suites that start a real gateway, IdP, Redis or proxy are test/integration/.
unit: deps
	$(BUN) test test/unit

integration: build certs
	bash scripts/ensure-redis.sh
	bash scripts/ensure-front-proxies.sh
	bash scripts/ensure-glewlwyd.sh
	$(BUN) test --timeout 60000 test/integration

e2e: integration

# The cluster suites start their own redis-server processes and the interop suite its own Glewlwyd;
# Debian's packages are installed when missing.
test: deps build certs
	bash scripts/ensure-redis.sh
	bash scripts/ensure-front-proxies.sh
	bash scripts/ensure-glewlwyd.sh
	$(BIN)/tsc --noEmit -p tsconfig.json
	$(MAKE) --no-print-directory lint
	rm -rf $(AUDIT_DIR) && mkdir -p $(AUDIT_DIR)
	OIDC_GATEWAY_AUDIT_DIR=$(AUDIT_DIR) $(BUN) test --timeout 60000 test/unit test/integration
	@echo "== the integration suites again, with the gateway started from source under Deno =="
	OIDC_GATEWAY_AUDIT_DIR=$(AUDIT_DIR) GATEWAY_RUNTIME=deno $(BUN) test --timeout 60000 $(DENO_INTEGRATION)
	@echo "== every gateway log of this run, checked for secrets and tokens =="
	OIDC_GATEWAY_AUDIT_DIR=$(AUDIT_DIR) $(BUN) test test/audit

# The JSON Schema for editors and the configuration reference, both generated from the schema.
docs: deps
	$(BUN) scripts/gen-docs.ts

bench: build
	bash bench/run.sh

clean:
	rm -rf dist certs data .tmp
