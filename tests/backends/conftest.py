"""The `backend` fixture: every contract test runs once per backend.

Each name in BACKENDS has a fixture `<name>_backend_url` (dashes become
underscores) giving the URL of an empty store; engines that need a server
provide theirs from a plugin in tests/engines/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from burrow.backends import open_backend
from burrow.backends.base import Backend

BACKENDS = ["memory", "sqlite"]


@pytest.fixture
def memory_backend_url() -> str:
    return "memory://"


@pytest.fixture
def sqlite_backend_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/contract.db"


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    url: str = request.getfixturevalue(f"{request.param.replace('-', '_')}_backend_url")
    async with open_backend(url) as opened:
        yield opened
