#!/usr/bin/env bash
# Smoke test of the benchmarks on a tiny data set: every bench command must still work end to
# end (generate the data set, back up and restore with dbkeep and with the plain tools, check that
# each restore reproduced the source). Timings are printed, never asserted: a 2 MiB data set on a
# shared CI machine says nothing about speed. CI runs it from the repository root with .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
out=$(mktemp -d)
database="dbkeep_bench_smoke_$$"
trap 'rm -rf "$out"' EXIT

timeout 300 "$PY" -m bench.run --size-mib 2 --pairs 1 --database "$database" --drop \
  --json "$out/results.json"

"$PY" - "$out/results.json" <<'PYTHON'
import json
import sys

report = json.load(open(sys.argv[1]))
expected = {
    "backup-plain", "backup-dbkeep", "backup-dbkeep-runner",
    "restore-plain", "restore-dbkeep", "restore-dbkeep-safety",
}
missing = expected - {row["kind"] for row in report["rows"]}
if missing:
    sys.exit(f"bench smoke: no results for {sorted(missing)}")
print("bench smoke: ok")
PYTHON

# The API benchmark end to end on 2,000 rows (wrk is used when installed).
timeout 300 "$PY" -m bench.api --rows 2000 --quick --database "dbkeep_bench_api_smoke_$$"
echo "bench api smoke: ok"
