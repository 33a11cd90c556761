#!/usr/bin/env bash
# `make bench` (after `make build`): the gateway against nginx, side by side. Installs wrk and nginx
# with apt-get when missing, runs everything on 127.0.0.1, prints a table and writes
# bench/results/latest.json. Options go to bench/bench.ts (e.g. `bash bench/run.sh --quick`).
set -euo pipefail
cd "$(dirname "$0")/.."
# Scenario 4r runs the gateway with [cluster] strategy = "redis" against a redis-server of its own.
bash scripts/ensure-redis.sh
exec node_modules/.bin/bun bench/bench.ts "$@"
