#!/usr/bin/env bash
# Run dbkeep on this machine: API, dashboard, worker and schedule in one process, with the embedded
# defaults (SQLite metadata in ./var, backups in ./var/backups). Settings come from .env / DBKEEP_*.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv
ensure_frontend_built
# `serve` migrates the metadata store before it starts listening.
exec "$VENV/bin/dbkeep" serve "$@"
