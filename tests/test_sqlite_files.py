"""The SQLite files: created private, and checked before a server starts on them.

Each case runs `burrow serve` as a real process on files in its own directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from burrow.backends.sqlite import SQLiteBackend
from burrow.errors import BackendUnavailable
from tests.conftest import ServerFactory
from tests.test_startup import serve
from tests.unwritable import unwritable

FILES = ("burrow.db", "burrow.db-wal", "burrow.db-shm")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leave_files(start_server: ServerFactory, url: str) -> None:
    """A server killed by -9 after one write: the database, its log and its -shm stay."""
    server = start_server(url)
    assert httpx.put(f"{server.url}/v1.0/a/q/m", content=b"x").status_code == 201
    server.kill()


def test_new_files_are_private_to_the_server(start_server: ServerFactory, tmp_path: Path) -> None:
    server = start_server("sqlite:///data/burrow.db")
    assert httpx.put(f"{server.url}/v1.0/a/q/m", content=b"x").status_code == 201
    data = tmp_path / "data"
    assert oct(mode(data)) == oct(0o700)
    assert {name: oct(mode(data / name)) for name in FILES} == dict.fromkeys(FILES, oct(0o600))
    assert "chmod 600" not in server.log()


def test_an_existing_database_keeps_its_mode_with_a_warning(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    url = "sqlite:///burrow.db"
    leave_files(start_server, url)
    for name in FILES:
        (tmp_path / name).chmod(0o644)
    server = start_server(url)
    assert httpx.get(f"{server.url}/v1.0/a/q/m").status_code == 200
    assert {name: oct(mode(tmp_path / name)) for name in FILES} == dict.fromkeys(FILES, oct(0o644))
    warnings = [line for line in server.log().splitlines() if "chmod 600" in line]
    assert len(warnings) == 1, server.log()
    assert f"{tmp_path / 'burrow.db'} has mode 0644, open to users other than" in warnings[0]


@contextlib.contextmanager
def a_directory(path: Path) -> Iterator[None]:
    """A directory in place of the file."""
    path.unlink()
    path.mkdir()
    yield


@pytest.mark.parametrize(
    ("suffix", "fault", "says"),
    [
        ("-shm", unwritable, "is not writable"),
        ("-wal", unwritable, "is not writable"),
        ("", unwritable, "is not writable"),
        ("-wal", a_directory, "is not a regular file"),
    ],
)
def test_an_unusable_file_stops_start_up_with_one_line(
    start_server: ServerFactory,
    tmp_path: Path,
    suffix: str,
    fault: Callable[[Path], contextlib.AbstractContextManager[None]],
    says: str,
) -> None:
    leave_files(start_server, "sqlite:///burrow.db")
    path = tmp_path / f"burrow.db{suffix}"
    with fault(path):
        done = serve("--backend", "sqlite:///burrow.db", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"Error: backend sqlite: {path} {says}"]


def test_a_backend_checks_its_files_again_when_it_opens(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    """What start-up checks, a backend made directly (or reopened) checks on open."""
    leave_files(start_server, "sqlite:///burrow.db")
    path = tmp_path / "burrow.db-shm"

    async def open_it() -> None:
        async with SQLiteBackend(str(tmp_path / "burrow.db")):
            pass

    with unwritable(path), pytest.raises(BackendUnavailable) as refused:
        asyncio.run(open_it())
    assert refused.value.message == f"sqlite: {path} is not writable"
