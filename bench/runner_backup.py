"""One backup through dbkeep's ``BackupRunner``, timed after start-up; prints JSON on stdout.

``dbkeep backup:database`` pays about a second of CPU and 70-80 MiB of memory just importing
its libraries before any byte is dumped; a long-running worker pays that once. This driver sets
up the runtime exactly like the CLI, then measures only ``run_backup`` (dump, compression,
SHA-256, file, metadata): wall time, CPU of this process and of the tools it starts, and how far
the process's resident memory rose above what it held before the backup. Settings come from
``DBKEEP_*`` as for the CLI.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time

import app.models  # noqa: F401  (every mapped table, as the CLI loads them)
from app.audit.service import Actor
from app.backups.models import BackupStatus, BackupTrigger
from app.backups.service import BackupService
from app.bootstrap import open_bootstrap
from app.config import get_settings


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def main() -> dict[str, object]:
    settings = get_settings()
    async with open_bootstrap(settings) as rt:
        async with rt.database.sessionmaker() as session:
            service = BackupService(
                session,
                settings=settings,
                storage=rt.storage,
                queue=None,
                actor=Actor.system("bench"),
            )
            backup = await service.create(trigger=BackupTrigger.cli, enqueue=False)
        runner = rt.backup_runner()
        rss_before = _status_kib("VmRSS")
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_before = time.process_time()
        started = time.perf_counter()
        done = await runner.run_backup(backup.id)
        wall = time.perf_counter() - started
        cpu_self = time.process_time() - cpu_before
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_children = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    return {
        "backup_id": done.id,
        "status": done.status.value,
        "error": done.error_message,
        "wall": wall,
        "cpu_self": cpu_self,
        "cpu_children": cpu_children,
        "rss_before_kib": rss_before,
        "peak_kib": _status_kib("VmHWM"),
        "file_size": done.file_size,
        "ok": done.status is BackupStatus.completed,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
