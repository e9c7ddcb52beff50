"""The files of the `sqlite://` backend: made private, checked before use, watched while used.

A database lives in three files: the database, its WAL log (`-wal`) and the shared
memory index of the log (`-shm`), which SQLite maps into memory. A new data directory
is made 0700 and a new database 0600 (SQLite gives the log and the index the mode of
the database), as the key file is: messages are tenants' data. A database that
already exists keeps its mode; one that group or others may read is warned about.

Before SQLite opens them, each of the three files that exists must be a regular file
this process may write: SQLite cannot write a read-only log, and one that maps a
read-only index has been seen to die of SIGBUS. Once open, SQLite keeps writing to
the files it opened even if they are deleted or replaced (a restore from a copy):
acknowledged writes would then go to files nobody will ever open again.
`WatchedFiles` notices this from the files' device and inode numbers.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
SUFFIXES = ("", "-wal", "-shm")


def companions(database: Path) -> list[Path]:
    """The database, its log and its index."""
    return [Path(f"{database}{suffix}") for suffix in SUFFIXES]


def unusable(database: Path) -> str | None:
    """What stops SQLite from using the database's files as they are (None: nothing)."""
    for path in companions(database):
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            continue  # made on open
        if not stat.S_ISREG(mode):
            return f"{path} is not a regular file"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"{path} is not writable"
    return None


def prepare(database: Path) -> None:
    """Make the data directory and an empty database, both private, if they are missing.

    An empty file is a new database to SQLite, which then keeps its mode.
    """
    database.parent.mkdir(DIRECTORY_MODE, parents=True, exist_ok=True)
    try:
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        mode = stat.S_IMODE(database.stat().st_mode)
        if mode & 0o077:
            logger.warning(
                "sqlite: %s has mode %04o, open to users other than its owner; "
                "chmod 600 it to keep the messages private",
                database,
                mode,
            )


@dataclass(frozen=True, slots=True)
class FileId:
    device: int
    inode: int

    @classmethod
    def of(cls, result: os.stat_result) -> FileId:
        return cls(result.st_dev, result.st_ino)


class WatchedFiles:
    """The database and the log a backend has open, and whether their names still name them.

    Made once SQLite has opened both (its first transaction makes the log). Each check
    is two `stat` calls, cheap enough for every fsync.
    """

    def __init__(self, database: Path) -> None:
        log = Path(f"{database}-wal")
        self._expected = {path: FileId.of(path.stat()) for path in (database, log)}

    def changed(self) -> str | None:
        """Why the files in use are no longer those at their paths (None: they still are)."""
        for path, expected in self._expected.items():
            try:
                found = FileId.of(path.stat())
            except FileNotFoundError:
                return f"{path} was deleted under the running server"
            except OSError:
                continue  # it cannot be looked at: no sign that it changed
            if found != expected:
                return f"{path} was replaced under the running server"
        return None

    def writable(self) -> bool:
        """Whether this process may still write both files (a read-only mount, say, says no)."""
        return all(os.access(path, os.W_OK) for path in self._expected)
