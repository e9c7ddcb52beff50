"""Servers on the two embedded backends, memory and SQLite, for tests run on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import BurrowServer

LOCAL_BACKENDS = ["memory", "sqlite"]


def start_local(kind: str, workdir: Path, *extra: str) -> BurrowServer:
    """A started server on `kind`, "memory" or "sqlite" (its database file in `workdir`)."""
    url = "memory://" if kind == "memory" else f"sqlite:///{workdir}/burrow.db"
    return BurrowServer(workdir, url, *extra).start()


def _serve(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BurrowServer]:
    started = start_local(request.param, tmp_path_factory.mktemp(request.param))
    yield started
    started.kill()


def server_on_each_local_backend() -> Any:
    """A module's `server` fixture: one server per module on each of `LOCAL_BACKENDS`.

    (`server = server_on_each_local_backend()` in the module; a fixture imported by
    its own name would read as an unused import.)
    """
    return pytest.fixture(scope="module", params=LOCAL_BACKENDS, name="server")(_serve)
