"""S3 storage on a real S3-compatible server (SeaweedFS ``weed mini`` on loopback): a stream of
N MiB uploaded through ``S3Storage.open_writer`` (multipart, bounded parts in flight) and read
back through ``S3Storage.read`` (checked against its SHA-256), with the wall time, throughput and
the peak RSS of this process for each direction.

    python -m bench.s3_stream --size-mib 2048 --part-mib 8 --inflight 2

Each configuration runs in a fresh child process, so every peak RSS is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

MiB = 1024 * 1024


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _measure(config: dict[str, Any], size: int, chunk: int) -> dict[str, Any]:
    from app.storage.registry import build_storage
    from app.storage.s3 import S3Storage

    storage = build_storage("s3", config)
    assert isinstance(storage, S3Storage)
    await storage.check_writable()  # the client and its service model loaded before measuring
    block = os.urandom(chunk)
    digest = hashlib.sha256()
    before = _rss_mib()

    started, cpu = time.perf_counter(), _cpu()
    writer = await storage.open_writer("bench/stream.bin")
    written = 0
    while written < size:
        piece = block[: min(chunk, size - written)]
        digest.update(piece)
        await writer.write(piece)
        written += len(piece)
    stored = await writer.commit()
    upload = time.perf_counter() - started
    upload_cpu = _cpu() - cpu
    peak_upload = _peak_mib()
    assert stored == size

    started, cpu = time.perf_counter(), _cpu()
    check = hashlib.sha256()
    received = 0
    async for part in storage.read("bench/stream.bin", chunk_size=MiB):
        check.update(part)
        received += len(part)
    download = time.perf_counter() - started
    download_cpu = _cpu() - cpu
    assert received == size and check.hexdigest() == digest.hexdigest()
    await storage.delete("bench/stream.bin")
    return {
        "size_mib": size / MiB,
        "part_mib": storage.part_size / MiB,
        "inflight": storage.max_inflight_parts,
        "rss_before_mib": round(before, 1),
        "upload_s": round(upload, 2),
        "upload_mib_s": round(size / MiB / upload, 1),
        "upload_cpu_s": round(upload_cpu, 2),
        "peak_after_upload_mib": round(peak_upload, 1),
        "download_s": round(download, 2),
        "download_mib_s": round(size / MiB / download, 1),
        "download_cpu_s": round(download_cpu, 2),
        "peak_mib": round(_peak_mib(), 1),
    }


def _child(args: argparse.Namespace) -> None:
    config = json.loads(sys.stdin.read())
    result = asyncio.run(_measure(config, args.size_mib * MiB, args.chunk_kib * 1024))
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--chunk-kib", type=int, default=256, help="size of each write()")
    parser.add_argument(
        "--config",
        action="append",
        default=None,
        help="PART_MIB:INFLIGHT, repeatable (default 8:2)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--part-mib", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--inflight", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    from tests.s3server import running_server

    with running_server() as server:
        bucket = asyncio.run(server.create_bucket())
        for spec in args.config or ["8:2"]:
            part, inflight = (int(x) for x in spec.split(":"))
            config = server.config(bucket, part_size=part * MiB, max_inflight_parts=inflight)
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.s3_stream",
                    "--child",
                    f"--size-mib={args.size_mib}",
                    f"--chunk-kib={args.chunk_kib}",
                ],
                input=json.dumps(config),
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                print(result.stderr[-3000:], file=sys.stderr)
                raise SystemExit(result.returncode)
            print(result.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
