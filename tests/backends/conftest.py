"""The `backend` fixture: every contract test runs once per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from burrow.backends import open_backend
from burrow.backends.base import Backend

BACKEND_URLS = {
    "memory": lambda tmp: "memory://",
    "sqlite": lambda tmp: f"sqlite:///{tmp}/contract.db",
}


@pytest.fixture(params=sorted(BACKEND_URLS))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    url = BACKEND_URLS[request.param](tmp_path)
    async with open_backend(url) as opened:
        yield opened
