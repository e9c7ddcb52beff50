"""Wake-ups between the processes that share one SQLite file (`--workers`, or servers
started apart on one file).

A write acknowledged by one process must wake the long polls waiting in the others,
within milliseconds. Each process binds a Unix datagram socket in Linux's abstract
namespace (no file to clean up: it goes with its process, `kill -9` included) and
lists itself in a directory next to the database, `burrow.db-peers/`, one empty file
per process named like its socket. After each group commit a process sends each peer
one datagram per queue the group changed: the account, the queue, and the earliest
moment a message it hid shows. A peer that is gone refuses the datagram, and its file
is removed; a peer too busy to read (its buffer full) is sent "lost track" once it
reads again, which wakes every waiter it has to look again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

import orjson

logger = logging.getLogger(__name__)

DIRECTORY_MODE = 0o700
LOST_TRACK = b"lost"

# (account, queue, when a message hidden by the write shows: epoch seconds, inf for none)
Heard = Callable[[str, str, float], None]


class PeerWakeups:
    """Tells the other processes on the database about writes, and hears theirs."""

    def __init__(self, database: Path, heard: Heard, lost_track: Callable[[], None]) -> None:
        self._directory = Path(f"{database}-peers")
        # Named by the database's place, so that only processes on this file meet.
        self._prefix = hashlib.sha256(str(database).encode()).hexdigest()[:16]
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._heard = heard
        self._lost_track = lost_track
        self._socket: socket.socket | None = None
        self._peers: list[str] = []
        self._listed: int | None = None  # the directory's mtime when it was last read
        self._behind: set[str] = set()  # peers that missed a datagram (their buffer full)

    def open(self) -> None:
        self._directory.mkdir(DIRECTORY_MODE, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.setblocking(False)
            sock.bind(self._address(self._name))
            (self._directory / self._name).touch(0o600)
        except BaseException:
            sock.close()
            raise
        self._socket = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._receive)

    def close(self) -> None:
        if self._socket is None:
            return
        asyncio.get_running_loop().remove_reader(self._socket.fileno())
        self._socket.close()
        self._socket = None
        with contextlib.suppress(OSError):
            (self._directory / self._name).unlink()

    def written(self, changed: dict[tuple[str, str], float]) -> None:
        """Tell every peer which queues a group commit changed (queue → next showing)."""
        if self._socket is None or not changed:
            return
        peers = self._current_peers()
        if not peers:
            return
        datagrams = [
            orjson.dumps([account, queue, None if math.isinf(at) else at])
            for (account, queue), at in changed.items()
        ]
        for peer in peers:
            if peer in self._behind and not self._send(peer, LOST_TRACK):
                continue
            self._behind.discard(peer)
            for datagram in datagrams:
                if not self._send(peer, datagram):
                    break

    def _send(self, peer: str, datagram: bytes) -> bool:
        assert self._socket is not None
        try:
            self._socket.sendto(datagram, self._address(peer))
        except BlockingIOError:
            self._behind.add(peer)
            return False
        except (ConnectionRefusedError, FileNotFoundError):
            self._forget(peer)  # the process is gone
            return False
        return True

    def _current_peers(self) -> list[str]:
        """The other processes listed, read again whenever the directory changed."""
        try:
            listed = self._directory.stat().st_mtime_ns
        except OSError:
            return self._peers
        if listed != self._listed:
            self._listed = listed
            with contextlib.suppress(OSError):
                self._peers = [name for name in os.listdir(self._directory) if name != self._name]
        return self._peers

    def _forget(self, peer: str) -> None:
        self._behind.discard(peer)
        with contextlib.suppress(ValueError):
            self._peers.remove(peer)
        with contextlib.suppress(OSError):
            (self._directory / peer).unlink()

    def _receive(self) -> None:
        assert self._socket is not None
        while True:
            try:
                datagram = self._socket.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            if datagram == LOST_TRACK:
                self._lost_track()
                continue
            try:
                account, queue, at = orjson.loads(datagram)
            except (orjson.JSONDecodeError, ValueError, TypeError):
                logger.warning("sqlite: a malformed wake-up from a peer was dropped")
                continue
            self._heard(account, queue, math.inf if at is None else float(at))

    def _address(self, name: str) -> bytes:
        return f"\0burrow-{self._prefix}-{name}".encode()
