"""The examples of docs/client-servers.md run as written, against a live server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import ServerFactory

DOC = Path(__file__).parent.parent / "docs" / "client-servers.md"
BLOCK = re.compile(r"^```(python|sh)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def test_the_examples_run(start_server: ServerFactory, tmp_path: Path) -> None:
    server = start_server()
    with socket.socket() as unused:  # the second server of the examples, not running
        unused.bind(("127.0.0.1", 0))
        absent = f"http://127.0.0.1:{unused.getsockname()[1]}"
        blocks = BLOCK.findall(DOC.read_text())
        assert [language for language, _ in blocks] == ["python", "sh"]
        for language, text in blocks:
            text = text.replace("http://127.0.0.1:8080", server.url)
            text = text.replace("http://127.0.0.1:8081", absent)
            command = [sys.executable, "-c", text] if language == "python" else ["sh", "-ec", text]
            ran = subprocess.run(
                command,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
            )
            assert ran.returncode == 0, (language, ran.stdout, ran.stderr)
            if language == "python":
                assert ran.stdout.startswith("handling ")
            else:
                assert ran.stdout.splitlines()[-1].endswith("\thi")
