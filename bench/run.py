"""Benchmark dbkeep against the plain tools, alternating the two in one run.

    .venv/bin/python -m bench.run --size-mib 1024 --pairs 3

Generates (or reuses, with ``--reuse``) ``dbkeep_bench_<size>m``, then for each pair runs, in
alternating order:

* backup: ``dbkeep backup:database`` (dump, zstd, SHA-256, file, metadata) against
  ``mariadb-dump <dbkeep's dump options> | zstd -3 -q -c > file``;
* restore into a scratch database: ``dbkeep backup:restore ID --yes --no-safety-backup`` against
  ``zstd -dc file | mariadb`` (both load dbkeep's backup file); plus one end-to-end dbkeep restore
  with its safety backup.

Both sides connect as the same account over the same transport. It prints medians, ratios, the
CPU time of each side's processes, the peak memory of each process and the output sizes, checks
that every restore reproduced the source (table checksums, routines, views, triggers, events), and
writes everything to ``bench/results/<time>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from app.engines.mysql.engine import DUMP_OPTIONS
from bench.common import (
    BenchTarget,
    admin_sql,
    check_database_name,
    drop_database,
    ensure_bench_account,
    fingerprint,
    private_dir,
    recreate_database,
)
from bench.generate import generate
from bench.measure import Measurement, measure, open_private

ROOT = Path(__file__).resolve().parent.parent
DBKEEP = Path(sys.executable).parent / "dbkeep"
MiB = 1024 * 1024


@dataclass
class Run:
    kind: str  # backup-plain, backup-dbkeep[-runner], restore-plain, restore-dbkeep[-safety]
    pair: int
    measurement: Measurement
    output_bytes: int | None = None
    growth_bytes: int | None = None  # runner only: peak memory above the pre-backup level


class Bench:
    def __init__(self, database: str, work: Path, *, parallelism: int | None) -> None:
        self.database = database
        self.scratch = check_database_name(f"{database}_restore")
        self.work = work
        self.password = ensure_bench_account()
        self.source = BenchTarget(database, self.password)
        self.cnf = self.source.defaults_file()
        self.parallelism = parallelism
        self.runs: list[Run] = []
        self.log = open_private(str(work / "commands.log"))

    # -- dbkeep --

    def env(self, database: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBKEEP_")}
        env.update(
            {
                "DBKEEP_ENV": "dev",
                "DBKEEP_DATABASE_URL": f"sqlite+aiosqlite:///{self.work}/meta.sqlite3",
                "DBKEEP_TARGET_URL": BenchTarget(database, self.password).url(),
                "DBKEEP_BACKUP_DIR": str(self.work / "backups"),
                "DBKEEP_VAR_DIR": str(self.work / "var"),
                "DBKEEP_SCHEDULE_ENABLED": "false",
                "DBKEEP_LOG_LEVEL": "WARNING",
            }
        )
        if self.parallelism is not None:
            env["DBKEEP_RESTORE_PARALLELISM"] = str(self.parallelism)
        return env

    def dbkeep(
        self, *args: str, database: str, argv: list[str] | None = None, stdout: int | None = None
    ) -> list[subprocess.Popen[bytes]]:
        # cwd is the work directory, so a developer's .env in the repository is not read.
        env = self.env(database)
        env["PYTHONPATH"] = str(ROOT)
        return [
            subprocess.Popen(
                argv or [str(DBKEEP), *args],
                env=env,
                cwd=self.work,
                stdin=subprocess.DEVNULL,
                stdout=self.log if stdout is None else stdout,
                stderr=self.log,
            )
        ]

    def idle_memory(self) -> int:
        """Peak memory of a dbkeep process that only starts (imports) and exits."""
        measured = measure(lambda: self.dbkeep("--help", database=self.database))
        _check(measured, "dbkeep --help")
        return measured.peak("dbkeep")

    def migrate(self) -> None:
        measured = measure(lambda: self.dbkeep("migrate", database=self.database))
        _check(measured, "dbkeep migrate")

    def newest_backup(self) -> tuple[int, int, int, Path]:
        """(id, stored size, raw size, file) of the newest completed backup."""
        with contextlib.closing(sqlite3.connect(self.work / "meta.sqlite3")) as db:
            row = db.execute(
                "SELECT id, file_size, raw_size, path FROM database_backups "
                "WHERE status = 'completed' ORDER BY id DESC LIMIT 1"
            ).fetchone()
        if row is None:
            raise SystemExit("no completed dbkeep backup: see commands.log in the work directory")
        return int(row[0]), int(row[1]), int(row[2] or 0), self.work / "backups" / row[3]

    # -- the measured commands --

    def backup_plain(self, pair: int) -> None:
        out = self.work / "plain.sql.zst"
        dump_argv = [
            "mariadb-dump",
            f"--defaults-extra-file={self.cnf}",
            *DUMP_OPTIONS,
            "--",
            self.database,
        ]

        def start() -> list[subprocess.Popen[bytes]]:
            sink = open_private(str(out))
            dump = subprocess.Popen(dump_argv, stdout=subprocess.PIPE, stderr=self.log)
            zstd = subprocess.Popen(
                ["zstd", "-3", "-q", "-c"], stdin=dump.stdout, stdout=sink, stderr=self.log
            )
            assert dump.stdout is not None
            dump.stdout.close()
            os.close(sink)
            return [dump, zstd]

        measured = measure(start)
        _check(measured, "mariadb-dump | zstd")
        self.runs.append(Run("backup-plain", pair, measured, out.stat().st_size))

    def backup_dbkeep(self, pair: int) -> None:
        measured = measure(lambda: self.dbkeep("backup:database", database=self.database))
        _check(measured, "dbkeep backup:database")
        _, stored, _, _ = self.newest_backup()
        self.runs.append(Run("backup-dbkeep", pair, measured, stored))

    def backup_runner(self, pair: int) -> None:
        """The BackupRunner alone, timed inside a process that has already started up."""
        out_path = self.work / "runner.json"
        sink = open_private(str(out_path))
        argv = [sys.executable, "-m", "bench.runner_backup"]
        try:
            whole = measure(lambda: self.dbkeep(database=self.database, argv=argv, stdout=sink))
        finally:
            os.close(sink)
        _check(whole, "bench.runner_backup")
        result = json.loads(out_path.read_text().strip().splitlines()[-1])  # after any log lines
        if not result["ok"]:
            raise SystemExit(f"runner backup failed: {result['error']}")
        peaks = {name: peak for name, peak in whole.peak_rss.items() if name != "python"}
        measured = Measurement(
            wall=result["wall"],
            cpu_user=result["cpu_self"] + result["cpu_children"],
            server_cpu=whole.server_cpu,
            peak_rss={**peaks, "dbkeep": result["peak_kib"] * 1024},
            returncodes=whole.returncodes,
        )
        growth = (result["peak_kib"] - result["rss_before_kib"]) * 1024
        self.runs.append(Run("backup-dbkeep-runner", pair, measured, result["file_size"], growth))

    def restore_plain(self, pair: int, backup: Path) -> None:
        recreate_database(self.scratch)

        def start() -> list[subprocess.Popen[bytes]]:
            unzstd = subprocess.Popen(
                ["zstd", "-dc", "-q", str(backup)], stdout=subprocess.PIPE, stderr=self.log
            )
            client = subprocess.Popen(
                ["mariadb", f"--defaults-extra-file={self.cnf}", self.scratch],
                stdin=unzstd.stdout,
                stdout=self.log,
                stderr=self.log,
            )
            assert unzstd.stdout is not None
            unzstd.stdout.close()
            return [unzstd, client]

        measured = measure(start)
        _check(measured, "zstd -dc | mariadb")
        self.runs.append(Run("restore-plain", pair, measured))

    def restore_dbkeep(self, pair: int, backup_id: int, *, safety: bool = False) -> None:
        if not safety:
            recreate_database(self.scratch)
        args = ["backup:restore", str(backup_id), "--yes"]
        if not safety:
            args.append("--no-safety-backup")
        measured = measure(lambda: self.dbkeep(*args, database=self.scratch))
        _check(measured, "dbkeep backup:restore")
        kind = "restore-dbkeep-safety" if safety else "restore-dbkeep"
        self.runs.append(Run(kind, pair, measured))

    def same_as_source(self, expected: dict[str, str], what: str) -> None:
        found = fingerprint(self.scratch)
        if found != expected:
            wrong = sorted(
                k for k in expected.keys() | found.keys() if found.get(k) != expected.get(k)
            )
            raise SystemExit(f"{what} did not reproduce the source: differs in {wrong}")
        print(f"  {what}: identical to the source ({len(found)} tables and objects)", flush=True)


def _check(measured: Measurement, what: str) -> None:
    if any(code != 0 for code in measured.returncodes):
        raise SystemExit(f"{what} failed (exit {measured.returncodes}): see commands.log")


def run(args: argparse.Namespace) -> dict[str, object]:
    database = check_database_name(args.database or f"dbkeep_bench_{int(args.size_mib)}m")
    exists = admin_sql(f"SHOW DATABASES LIKE '{database}'").strip() == database
    if not (args.reuse and exists):
        print(f"generating {database} ({args.size_mib:g} MiB of dump) ...", flush=True)
        generate(database, args.size_mib)
    work = private_dir() / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(mode=0o700)
    bench = Bench(database, work, parallelism=args.parallelism)
    bench.migrate()
    idle = bench.idle_memory()
    expected = fingerprint(database)
    kinds = set(args.only.split(",")) if args.only else {"backup", "restore"}
    try:
        for pair in range(1, args.pairs + 1):
            # Alternate which side goes first, so drift on a shared machine hits both alike.
            first_plain = pair % 2 == 1
            print(f"pair {pair}/{args.pairs}", flush=True)
            if "backup" in kinds or pair == 1:
                steps = [bench.backup_plain, bench.backup_dbkeep, bench.backup_runner]
                for step in steps if first_plain else steps[::-1]:
                    step(pair)
                    _show(bench.runs[-1])
            if "restore" in kinds:
                backup_id, _, _, backup_file = bench.newest_backup()
                restores = [
                    ("plain restore", partial(bench.restore_plain, pair, backup_file)),
                    ("dbkeep restore", partial(bench.restore_dbkeep, pair, backup_id)),
                ]
                for what, step in restores if first_plain else restores[::-1]:
                    step()
                    _show(bench.runs[-1])
                    if pair == 1:
                        bench.same_as_source(expected, what)
        if "restore" in kinds and args.safety:
            backup_id, _, _, _ = bench.newest_backup()
            bench.restore_dbkeep(0, backup_id, safety=True)
            _show(bench.runs[-1])
            bench.same_as_source(expected, "dbkeep restore with safety backup")
    finally:
        drop_database(bench.scratch)
    _, stored, raw, _ = bench.newest_backup()
    report = _report(bench, raw_bytes=raw, stored_bytes=stored, size_mib=args.size_mib)
    growths = [r.growth_bytes for r in bench.runs if r.growth_bytes is not None]
    print(
        f"dbkeep memory: `dbkeep --help` (every command's imports, the API's too) peaks at "
        f"{idle / MiB:.1f} MiB; during "
        f"BackupRunner.run_backup memory rose by at most {max(growths, default=0) / MiB:.1f} MiB"
    )
    report["idle_dbkeep_peak_bytes"] = idle
    report["runner_growth_bytes"] = growths
    if not args.keep_files:
        shutil.rmtree(work, ignore_errors=True)
    if args.drop:
        drop_database(database)
    return report


def _show(run: Run) -> None:
    m = run.measurement
    server = f"  server CPU {m.server_cpu:6.1f} s" if m.server_cpu is not None else ""
    print(f"  {run.kind:<22} {m.wall:7.2f} s wall  {m.cpu:6.2f} s CPU{server}", flush=True)


def _median(runs: list[Run], attribute: str) -> float:
    return statistics.median(getattr(r.measurement, attribute) for r in runs)


def _versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
        except OSError:
            return "not installed"
        return out.strip().splitlines()[0] if out.strip() else "?"

    return {
        "server": admin_sql("SELECT VERSION()").strip(),
        "mariadb-dump": first_line(["mariadb-dump", "--version"]),
        "mariadb": first_line(["mariadb", "--version"]),
        "zstd": first_line(["zstd", "--version"]),
        "python": sys.version.split()[0],
        "dbkeep": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip(),
    }


def _report(
    bench: Bench, *, raw_bytes: int, stored_bytes: int, size_mib: float
) -> dict[str, object]:
    by_kind: dict[str, list[Run]] = {}
    for r in bench.runs:
        by_kind.setdefault(r.kind, []).append(r)
    rows = []
    baselines = {"backup": "backup-plain", "restore": "restore-plain"}
    print()
    print(
        f"{bench.database}: {raw_bytes / MiB:,.0f} MiB of dump, {stored_bytes / MiB:,.0f} MiB "
        f"stored (zstd -3); medians of {len(by_kind.get('backup-plain', []))} pairs"
    )
    header = (
        f"{'':<24}{'wall s':>8}{'ratio':>7}{'CPU s':>8}{'ratio':>7}{'server CPU s':>14}"
        f"  peak memory per process"
    )
    print(header)
    print("-" * len(header))
    for kind in (
        "backup-plain",
        "backup-dbkeep",
        "backup-dbkeep-runner",
        "restore-plain",
        "restore-dbkeep",
        "restore-dbkeep-safety",
    ):
        runs = by_kind.get(kind)
        if not runs:
            continue
        base = by_kind.get(baselines[kind.split("-")[0]], runs)
        wall, cpu = _median(runs, "wall"), _median(runs, "cpu")
        wall_ratio = wall / _median(base, "wall")
        cpu_ratio = cpu / _median(base, "cpu")
        servers = [r.measurement.server_cpu for r in runs if r.measurement.server_cpu is not None]
        server = statistics.median(servers) if servers else None
        peaks: dict[str, int] = {}
        for r in runs:
            for name, peak in r.measurement.peak_rss.items():
                peaks[name] = max(peaks.get(name, 0), peak)
        shown = ", ".join(
            f"{name} {peak / MiB:.1f}"
            for name, peak in sorted(peaks.items(), key=lambda item: -item[1])
        )
        server_text = f"{server:14.1f}" if server is not None else f"{'-':>14}"
        print(
            f"{kind:<24}{wall:8.2f}{wall_ratio:7.2f}{cpu:8.2f}{cpu_ratio:7.2f}{server_text}"
            f"  {shown} (MiB)"
        )
        rows.append(
            {
                "kind": kind,
                "runs": len(runs),
                "wall_median": wall,
                "wall_ratio": wall_ratio,
                "cpu_median": cpu,
                "cpu_ratio": cpu_ratio,
                "server_cpu_median": server,
                "peak_rss": peaks,
                "walls": [r.measurement.wall for r in runs],
                "cpus": [r.measurement.cpu for r in runs],
                "output_bytes": [r.output_bytes for r in runs if r.output_bytes is not None],
            }
        )
    outputs = {
        k: by_kind[k][0].output_bytes for k in ("backup-plain", "backup-dbkeep") if k in by_kind
    }
    if outputs:
        print("output: " + ", ".join(f"{k} {v / MiB:,.1f} MiB" for k, v in outputs.items() if v))
    report: dict[str, object] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "database": bench.database,
        "size_mib": size_mib,
        "raw_bytes": raw_bytes,
        "stored_bytes": stored_bytes,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "restore_parallelism": bench.parallelism or os.cpu_count(),
        "versions": _versions(),
        "rows": rows,
        "runs": [
            {
                "kind": r.kind,
                "pair": r.pair,
                "output_bytes": r.output_bytes,
                "growth_bytes": r.growth_bytes,
                **asdict(r.measurement),
            }
            for r in bench.runs
        ],
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=float, default=1024, help="data set size (dump MiB)")
    parser.add_argument("--database", help="default: dbkeep_bench_<size>m")
    parser.add_argument("--pairs", type=int, default=3, help="alternating runs of each side")
    parser.add_argument("--reuse", action="store_true", help="keep the data set if it exists")
    parser.add_argument("--only", help="backup or restore (default: both)")
    parser.add_argument("--parallelism", type=int, help="DBKEEP_RESTORE_PARALLELISM for dbkeep")
    parser.add_argument(
        "--no-safety",
        dest="safety",
        action="store_false",
        help="skip the end-to-end restore with a safety backup",
    )
    parser.add_argument("--drop", action="store_true", help="drop the data set at the end")
    parser.add_argument("--keep-files", action="store_true", help="keep backups and logs")
    parser.add_argument("--json", type=Path, help="where to write results (default: bench/results)")
    args = parser.parse_args()
    report = run(args)
    out = args.json or ROOT / "bench" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
