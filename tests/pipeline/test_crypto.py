"""The age stages: interop both ways with the standard ``age`` tool, wrong keys and damage
refused, no plaintext in the output, memory flat on a large stream."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from app.pipeline.codecs import CorruptStream, PipelineError
from app.pipeline.crypto import (
    AGE_MAGIC,
    RecipientInvalid,
    WrongIdentity,
    check_opens,
    decryptor,
    encryptor,
    generate_identity,
    parse_recipient,
)

AGE = shutil.which("age")
needs_age = pytest.mark.skipif(AGE is None, reason="the age tool is not installed")
SAMPLE = b"INSERT INTO `t` VALUES (1,'secret-row-payload');\n" * 40_000 + os.urandom(70_000)


async def _chunks(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _collect(stage_out: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in stage_out])


async def _encrypt(data: bytes, recipients: list[str]) -> bytes:
    async with encryptor(recipients)(_chunks(data)) as out:
        return await _collect(out)


async def _decrypt(data: bytes, identities: list[str]) -> bytes:
    async with decryptor(identities)(_chunks(data)) as out:
        return await _collect(out)


async def test_round_trip_to_several_recipients() -> None:
    (secret_a, public_a), (secret_b, public_b) = generate_identity(), generate_identity()
    stored = await _encrypt(SAMPLE, [public_a, public_b])
    assert stored.startswith(AGE_MAGIC)
    assert await _decrypt(stored, [secret_a]) == SAMPLE
    assert await _decrypt(stored, [secret_b]) == SAMPLE


async def test_no_plaintext_sequence_in_the_output() -> None:
    _secret, public = generate_identity()
    stored = await _encrypt(SAMPLE, [public])
    assert b"secret-row-payload" not in stored
    assert b"INSERT INTO" not in stored
    # No 16-byte window of the input survives anywhere in the output.
    windows = {SAMPLE[i : i + 16] for i in range(0, len(SAMPLE) - 16, 4093)}
    assert not any(window in stored for window in windows)


@needs_age
async def test_dbkeep_output_decrypts_with_the_age_tool(tmp_path: Path) -> None:
    secret, public = generate_identity()
    stored = tmp_path / "backup.age"
    stored.write_bytes(await _encrypt(SAMPLE, [public]))
    key = tmp_path / "key.txt"
    key.write_text(f"# test identity\n{secret}\n")
    result = subprocess.run(
        [str(AGE), "-d", "-i", str(key), str(stored)], capture_output=True, check=True
    )
    assert result.stdout == SAMPLE


@needs_age
async def test_age_tool_output_decrypts_through_the_stage(tmp_path: Path) -> None:
    secret, public = generate_identity()
    plain = tmp_path / "dump.sql"
    plain.write_bytes(SAMPLE)
    made = tmp_path / "dump.sql.age"
    subprocess.run([str(AGE), "-r", public, "-o", str(made), str(plain)], check=True)
    assert await _decrypt(made.read_bytes(), [secret]) == SAMPLE


@needs_age
async def test_a_user_key_from_age_keygen_is_a_valid_recipient(tmp_path: Path) -> None:
    key = tmp_path / "user.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    lines = key.read_text().splitlines()
    public = next(line.split(": ")[1] for line in lines if line.startswith("# public key"))
    secret = next(line for line in lines if line.startswith("AGE-SECRET-KEY-1"))
    parse_recipient(public)
    _own_secret, own_public = generate_identity()
    stored = tmp_path / "b.age"
    stored.write_bytes(await _encrypt(SAMPLE, [own_public, public]))
    result = subprocess.run(
        [str(AGE), "-d", "-i", str(key), str(stored)], capture_output=True, check=True
    )
    assert result.stdout == SAMPLE
    assert await _decrypt(stored.read_bytes(), [secret]) == SAMPLE


async def test_a_wrong_identity_is_refused_clearly() -> None:
    _secret, public = generate_identity()
    other, _ = generate_identity()
    stored = await _encrypt(SAMPLE, [public])
    with pytest.raises(WrongIdentity, match="encrypted to keys dbkeep does not hold"):
        await _decrypt(stored, [other])
    with pytest.raises(WrongIdentity):
        await check_opens(_chunks(stored), [other])


async def test_check_opens_reads_only_the_header_and_accepts_the_right_key() -> None:
    secret, public = generate_identity()
    stored = await _encrypt(SAMPLE, [public])
    await check_opens(_chunks(stored), [secret])
    with pytest.raises(CorruptStream, match="not an age-encrypted file"):
        await check_opens(_chunks(SAMPLE), [secret])


async def test_damage_and_truncation_are_refused() -> None:
    secret, public = generate_identity()
    stored = await _encrypt(SAMPLE, [public])
    flipped = bytearray(stored)
    flipped[len(stored) // 2] ^= 0x01
    with pytest.raises(CorruptStream, match="damaged or truncated"):
        await _decrypt(bytes(flipped), [secret])
    with pytest.raises(CorruptStream, match="damaged or truncated"):
        await _decrypt(stored[: len(stored) - 1000], [secret])
    with pytest.raises(CorruptStream):
        await _decrypt(b"not an age file at all" * 100, [secret])


async def test_a_source_error_is_the_reason_reported() -> None:
    _secret, public = generate_identity()

    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        raise PipelineError("the zstd compressor failed (exit status 1)")

    with pytest.raises(PipelineError, match="zstd compressor failed"):
        async with encryptor([public])(failing()) as out:
            await _collect(out)


async def test_a_consumer_leaving_early_stops_the_thread() -> None:
    _secret, public = generate_identity()

    async def endless() -> AsyncIterator[bytes]:
        block = os.urandom(1 << 20)
        while True:
            yield block

    async with asyncio.timeout(20):
        async with encryptor([public])(endless()) as out:
            async for _piece in out:
                break
    await asyncio.sleep(0)
    assert not [t for t in threading.enumerate() if t.name == "dbkeep-age"]


@pytest.mark.parametrize(
    "text",
    ["", "age1", "age1notakey", "ssh-ed25519 AAAA", "AGE-SECRET-KEY-1QQQ", "age1" + "q" * 58],
)
def test_recipients_are_validated(text: str) -> None:
    with pytest.raises(RecipientInvalid):
        parse_recipient(text)


@pytest.mark.slow
async def test_a_256_mib_stream_encrypts_and_decrypts_in_flat_memory() -> None:
    secret, public = generate_identity()
    total = 256 * 1024 * 1024
    block = os.urandom(1 << 20)
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline

    async def source() -> AsyncIterator[bytes]:
        nonlocal peak
        for _ in range(total // len(block)):
            peak = max(peak, process.memory_info().rss)
            yield block

    started = time.monotonic()
    seen = hashlib.sha256()
    async with (
        encryptor([public])(source()) as encrypted,
        decryptor([secret])(encrypted) as plain,
    ):
        async for piece in plain:
            seen.update(piece)
            peak = max(peak, process.memory_info().rss)
    elapsed = time.monotonic() - started
    expected = hashlib.sha256()
    for _ in range(total // len(block)):
        expected.update(block)
    assert seen.hexdigest() == expected.hexdigest()
    assert peak - baseline < 64 * 1024 * 1024, f"grew {(peak - baseline) >> 20} MiB"
    assert elapsed < 120


async def test_a_vanished_file_stays_a_vanished_file() -> None:
    secret, public = generate_identity()
    stored = await _encrypt(SAMPLE, [public])

    async def vanishing() -> AsyncIterator[bytes]:
        yield stored[:200_000]
        raise FileNotFoundError("gone")

    with pytest.raises(FileNotFoundError):
        async with decryptor([secret])(vanishing()) as out:
            await _collect(out)
