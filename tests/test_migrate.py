"""`burrow migrate` as a real process: killed with SIGKILL halfway and run again, it ends
with the target holding exactly the source's messages; a difference is exit status 1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson

from burrow.backends import open_backend
from burrow.model import NewMessage
from burrow.transfer import pages, queues_of
from tests.waiting import PATIENCE, wait_until

QUEUES = ("first", "second")
PER_QUEUE = 10_000


def migrate(workdir: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "burrow", "migrate", *args]
    with (workdir / "stderr.log").open("ab") as log:
        return subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=log)


def finished(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    out, _ = process.communicate(timeout=120)
    return process.returncode, out.decode()


async def held(url: str) -> dict[tuple[str, str], list[tuple[str, bytes, bytes, bool]]]:
    """Every queue's messages, in order: id, body, meta, whether hidden."""
    async with open_backend(url) as backend:
        return {
            (account, queue): [
                (m.id, m.body, m.meta, m.hide > 0)
                async for page in pages(backend, account, queue)
                for m in page
            ]
            for account, queue in await queues_of(backend)
        }


async def fill(url: str, per_queue: int) -> None:
    async with open_backend(url) as backend:
        for queue in QUEUES:
            for start in range(0, per_queue, 1000):
                await backend.put_messages(
                    "acct",
                    queue,
                    [
                        NewMessage(f"{queue}-{i:05}", b"b" * 100, 3600, 600 * (i % 10 == 0), b"m")
                        for i in range(start, min(start + 1000, per_queue))
                    ],
                )


def progress_saved(state: Path) -> bool:
    return state.exists() and bool(orjson.loads(state.read_bytes())["queues"])


async def test_migrate_killed_halfway_resumes_to_an_exact_copy(
    tmp_path: Path, postgres_backend_url: str
) -> None:
    source, state = f"sqlite:///{tmp_path}/source.db", tmp_path / "migrate.json"
    await fill(source, PER_QUEUE)
    args = ("--from", source, "--to", postgres_backend_url, "--state", str(state))
    first = migrate(tmp_path, *args, "--batch", "100")

    def stopped_midway() -> bool:
        """Stop it and look: killed if the state shows progress, else let it go on."""
        assert first.poll() is None, "migrate finished before it could be killed"
        os.kill(first.pid, signal.SIGSTOP)
        if progress_saved(state):
            return True
        os.kill(first.pid, signal.SIGCONT)
        return False

    try:
        wait_until(stopped_midway, "the state file to show progress", PATIENCE * 3)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.communicate()
    partial = await held(postgres_backend_url)
    assert sum(map(len, partial.values())) < 2 * PER_QUEUE  # killed halfway

    status, out = finished(migrate(tmp_path, *args))
    assert status == 0, out + (tmp_path / "stderr.log").read_text()
    assert "resuming from" in (tmp_path / "stderr.log").read_text()
    assert f"verified 2 queues ({2 * PER_QUEUE:,} messages)" in out
    copied = await held(postgres_backend_url)
    assert copied == await held(source)  # each message once, in order, hidden ones hidden
    assert not state.exists()  # nothing left to resume


async def test_migrate_onto_a_queue_holding_more_is_a_mismatch(
    tmp_path: Path, redis_backend_url: str
) -> None:
    source = f"sqlite:///{tmp_path}/source.db"
    await fill(source, 5)
    async with open_backend(redis_backend_url) as target:
        await target.put_message("acct", "second", NewMessage("extra", b"not in the source", 0, 0))
    state = tmp_path / "migrate.json"
    args = ("--from", source, "--to", redis_backend_url, "--state", str(state))
    status, out = finished(migrate(tmp_path, *args))
    assert status == 1
    assert "mismatch: acct/second: 5 messages, target 6" in out
    assert "1 of 2 queues differ" in out
    assert state.exists()  # kept: the operator decides what to do
