"""The docs run as written: README blocks, `make serve`, the nginx, Docker and config examples.

README.md: every ```sh and ```python block runs, in order, in one working directory (a
file one block makes, such as a key file, is there for the next), each against a fresh
`burrow serve` on a free port: `http://127.0.0.1:8080` in a block becomes that server's
URL, and `BURROW_URL` points the CLI at it. Shell blocks run under `bash -e -o pipefail`,
so every command must succeed (`curl -f` where the README expects success). A comment
on the line before a block changes this:

    <!-- not run: REASON -->        skip it (it serves, or changes the reader's shell)
    <!-- server: FLAGS -->          start its server with these `burrow serve` flags
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import httpx
import pytest

from burrow.config import Limits, MetricsSettings, Settings
from tests.conftest import ServerFactory
from tests.engines.redis import free_port, wait_for
from tests.servers import READY

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
DOCUMENTED_URL = "http://127.0.0.1:8080"
VENV_BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
MARK = re.compile(r"<!--\s*(not run|server):(.*)-->")
# The memory backend, so that nothing is written into the checkout.
MAKE_SERVE = ["make", "--no-print-directory", "-C", str(REPO), "serve", "BACKEND=memory://"]
RUN = {"sh": ["bash", "-e", "-o", "pipefail", "-c"], "python": [sys.executable, "-c"]}


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block of a Markdown file."""

    line: int
    language: str
    code: str
    mark: str  # "", "not run" or "server"
    argument: str  # the reason, or the server's flags

    @property
    def runs(self) -> bool:
        return self.language in RUN and self.mark != "not run"


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for fence in FENCE.finditer(text):
        before = text[: fence.start()].rstrip().rsplit("\n", 1)[-1]
        mark = MARK.fullmatch(before.strip())
        found.append(
            Block(
                line=text.count("\n", 0, fence.start()) + 1,
                language=fence[1],
                code=fence[2],
                mark=mark[1] if mark else "",
                argument=mark[2].strip() if mark else "",
            )
        )
    return found


def environment(**extra: str) -> dict[str, str]:
    """The caller's environment, with the venv's `burrow` first on PATH and no Burrow settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BURROW_")}
    return env | {"PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"} | extra


def test_every_block_that_is_not_run_says_why() -> None:
    readme = blocks(REPO / "README.md")
    assert sum(block.runs for block in readme) >= 4
    for block in readme:
        if block.mark:
            assert block.argument, f"README.md:{block.line}: {block.mark} needs its reason or flags"


def test_the_readme_blocks_run_against_a_live_server(
    start_server: ServerFactory, tmp_path: Path, subtests: pytest.Subtests
) -> None:
    for block in filter(lambda b: b.runs, blocks(REPO / "README.md")):
        with subtests.test(msg=f"README.md:{block.line}"):
            flags = shlex.split(block.argument) if block.mark == "server" else []
            server = start_server("memory://", *flags)
            try:
                done = subprocess.run(
                    [*RUN[block.language], block.code.replace(DOCUMENTED_URL, server.url)],
                    cwd=tmp_path,
                    env=environment(BURROW_URL=server.url),
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
            finally:
                server.kill()
            assert done.returncode == 0, (
                f"README.md:{block.line} exited {done.returncode}\n"
                f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}\n--- server\n{server.log()}"
            )


def test_absolute_file_urls_have_four_slashes() -> None:
    # sqlite:///etc/x.db is the relative path etc/x.db; the absolute one is sqlite:////etc/x.db.
    relative_system_path = re.compile(r"\b(?:sqlite|ring):///(?:etc|var|opt|srv|home|tmp|usr)/")
    for path in [*DOCS, REPO / "deploy" / "burrow.toml", REPO / "Dockerfile"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not relative_system_path.search(line), f"{path.name}:{number}: {line}"


# make serve --------------------------------------------------------------------------------


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A stand-in for .venv with Burrow installed, so `make serve` installs nothing."""
    fake = tmp_path / "venv"
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "python").symlink_to(sys.executable)
    (fake / "bin" / "burrow").symlink_to(VENV_BIN / "burrow")
    (fake / ".installed").touch()
    return fake


@pytest.fixture
def nginx_prefix() -> Iterator[str]:
    """Like the example's /tmp/burrow-nginx: as root, nginx's workers run as `nobody`,
    who must reach the temporary files there (and cannot below pytest's private tmp_path).
    """
    prefix = tempfile.mkdtemp(prefix="burrow-nginx-")
    os.chmod(prefix, 0o755)
    yield prefix
    shutil.rmtree(prefix)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts, each in a session of its own: stopped by group after it."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_make_serve_passes_host_port_and_auth(
    venv: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    keys = tmp_path / "keys.json"
    token = subprocess.run(
        ["burrow", "keys", "add", "--file", str(keys), "--account", "acme"],
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # As the README has it, on every interface, which needs AUTH=; port 0 for a free one.
    log = tmp_path / "make.log"
    with log.open("w") as out:
        make = subprocess.Popen(
            [*MAKE_SERVE, f"VENV={venv}", "HOST=0.0.0.0", "PORT=0", f"AUTH=keys:{keys}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment(),
            text=True,
            start_new_session=True,
        )
    started.append(make)
    wait_for(lambda: READY.search(log.read_text()) is not None or make.poll() is not None, "ready")
    ready = READY.search(log.read_text())
    assert ready, log.read_text()
    flags = f"--host 0.0.0.0 --port 0 --backend memory:// --auth keys:{keys}"
    assert f"starting: burrow serve {flags}" in log.read_text()
    url = f"http://127.0.0.1:{ready[3]}/v1.0/acme/jobs"
    assert httpx.put(f"{url}/j1", content=b"x", headers={"X-Auth-Token": token}).status_code == 201
    assert httpx.get(url).status_code == 401


def test_make_serve_without_auth_is_refused_off_loopback(venv: Path) -> None:
    done = subprocess.run(
        [*MAKE_SERVE, f"VENV={venv}", "HOST=0.0.0.0", "PORT=0"],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--auth keys:PATH" in done.stdout + done.stderr


# deploy/ and the Dockerfile ---------------------------------------------------------------


def test_the_nginx_example_starts_as_written(
    start_server: ServerFactory,
    tmp_path: Path,
    nginx_prefix: str,
    started: list[subprocess.Popen[str]],
) -> None:
    """The commands at the top of deploy/nginx.conf, from a checkout, as whoever runs the tests.

    Both upstreams are one server here (deployment 2 itself is tests/test_deploy.py's).
    Bodies and answers larger than nginx's buffers go through its temporary files.
    """
    conf = (REPO / "deploy" / "nginx.conf").read_text()
    commands = [line.removeprefix("#   ") for line in conf.splitlines() if line.startswith("#   ")]
    mkdir, start = [c for c in commands if not c.startswith("burrow serve")]
    server = start_server()
    port = free_port()
    checkout = tmp_path / "checkout"
    (checkout / "deploy").mkdir(parents=True)
    conf = re.sub(r"127\.0\.0\.1:800[12]", server.url.removeprefix("http://"), conf)
    conf = conf.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{port}")
    (checkout / "deploy" / "nginx.conf").write_text(conf)
    mkdir, start = (c.replace("/tmp/burrow-nginx", nginx_prefix) for c in (mkdir, start))
    subprocess.run(["bash", "-e", "-c", mkdir], check=True)
    log = tmp_path / "nginx.log"
    with log.open("w") as out:
        nginx = subprocess.Popen(
            ["bash", "-c", f"exec {start}"],
            cwd=checkout,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    started.append(nginx)
    front = f"http://127.0.0.1:{port}"
    wait_for(lambda: nginx.poll() is not None or answers(f"{front}/health"), "nginx")
    assert nginx.poll() is None, log.read_text()
    body = os.urandom(100_000)
    with httpx.Client(base_url=front, timeout=10) as http:
        assert http.put("/v1.0/acme/jobs/big", content=body).status_code == 201
        assert http.get("/v1.0/acme/jobs/big", params={"detail": "body"}).content == body
    assert "[crit]" not in log.read_text() and "[emerg]" not in log.read_text()


def answers(url: str) -> bool:
    try:
        return httpx.get(url).is_success
    except httpx.TransportError:
        return False


def test_the_docker_healthcheck_asks_health(start_server: ServerFactory) -> None:
    instructions = (REPO / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    found = [re.search(r"\bCMD (\[.*\])$", i) for i in instructions if i.startswith("HEALTHCHECK")]
    assert found and found[0], "no HEALTHCHECK ... CMD [...] in the Dockerfile"
    healthcheck = json.loads(found[0][1])
    server = start_server()
    up = environment(BURROW_PORT=server.url.rsplit(":", 1)[1])
    assert subprocess.run(healthcheck, env=up, timeout=30).returncode == 0
    server.kill()
    assert subprocess.run(healthcheck, env=up, capture_output=True, timeout=30).returncode != 0


def test_the_example_config_names_every_setting_at_its_default(tmp_path: Path) -> None:
    """deploy/burrow.toml: as given it sets nothing; with every `#name = value` line
    uncommented it sets every setting, each to its default, and one account's limits."""
    example = REPO / "deploy" / "burrow.toml"
    assert Settings.load(str(example), environ={}) == Settings()
    uncommented = tmp_path / "burrow.toml"
    uncommented.write_text(re.sub(r"^#(?=[a-z_]+ = |\[)", "", example.read_text(), flags=re.M))
    document = tomllib.loads(uncommented.read_text())
    sections = {"limits", "accounts", "metrics"}
    assert set(document["server"]) == {f.name for f in fields(Settings)} - sections
    assert set(document["limits"]) == {f.name for f in fields(Limits)}
    assert set(document["metrics"]) == {f.name for f in fields(MetricsSettings)}
    loaded = Settings.load(str(uncommented), environ={})
    assert dataclasses.replace(loaded, accounts={}) == Settings()
    assert list(loaded.accounts) == ["acme"] and loaded.accounts["acme"] != Limits()
