"""The AWS SDK for JavaScript v3 (@aws-sdk/client-sqs, pinned in tests/js) against a live
server: tests/js/smoke.mjs creates a queue, sends with attributes, receives and deletes.
The SDK checks the MD5 of every body it sends and receives and throws on a mismatch.

`make test` installs Node.js (Debian's) and runs `npm ci` in tests/js first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import BurrowServer
from tests.sqs.conftest import frontend_only

SMOKE = Path(__file__).parent.parent / "js" / "smoke.mjs"
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed (make test installs nodejs)")
@frontend_only
def test_the_javascript_sdk_creates_sends_receives_and_deletes(
    sqs_server: BurrowServer, sqs_account: str
) -> None:
    assert NODE is not None
    installed = SMOKE.parent / "node_modules" / "@aws-sdk" / "client-sqs"
    assert installed.is_dir(), "@aws-sdk/client-sqs is not installed: run npm ci in tests/js"
    run = subprocess.run(
        [NODE, str(SMOKE), sqs_server.url, sqs_account],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, f"{run.stderr}\n{run.stdout}"
    outcome = json.loads(run.stdout)
    bodies = sorted(message["body"] for message in outcome["received"])
    assert bodies == ["batch one", "batch two", "hello from node 🦡"]
    with_attributes = [m["attributes"] for m in outcome["received"] if m["attributes"]]
    assert with_attributes == [{"colour": "blue ✓", "count": "42", "picture": "R0lGAP8="}] * 2
