#!/usr/bin/env bash
# The whole test suite, set-up included: Python deps, dashboard deps, Chromium, MariaDB, Redis,
# PostgreSQL. QUICK=1 skips the slow fault-injection tests and the browser tests.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

apt_install mariadb-client zstd wrk age sqlite3
[ "${QUICK:-0}" = 1 ] || apt_install chromium
ensure_venv dev
ensure_mariadb
ensure_redis
ensure_postgres

PYTEST=("$VENV/bin/pytest" -p no:cacheprovider)
MARKERS=()
[ "${QUICK:-0}" = 1 ] && MARKERS=(-m "not slow and not e2e")

log "lint and types"
"$VENV/bin/ruff" check app tests bench migrations
"$VENV/bin/ruff" format --check app tests bench migrations
"$VENV/bin/mypy" app

log "tests (SQLite metadata store)"
"${PYTEST[@]}" "${MARKERS[@]}" tests

log "tests (MariaDB metadata store)"
DBKEEP_TEST_METADATA=mysql "${PYTEST[@]}" -m "not slow and not e2e" tests/backups tests/api

log "tests (PostgreSQL metadata store)"
DBKEEP_TEST_METADATA=postgres "${PYTEST[@]}" -m "not slow and not e2e" tests/backups tests/api

if [ -f frontend/package.json ]; then
  ensure_frontend_deps
  log "dashboard: API types, type check, unit tests, build"
  (cd frontend && npm run --silent check:api && npm run --silent typecheck \
     && npm run --silent test:unit && npm run --silent build)
  if [ "${QUICK:-0}" != 1 ]; then
    log "dashboard: end-to-end tests in Chromium"
    (cd frontend && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm run --silent test:e2e)
  fi
fi

if [ -d bench ] && [ -f bench/smoke.sh ]; then
  log "benchmarks (smoke run on a tiny data set)"
  bash bench/smoke.sh
fi
log "all tests passed"
