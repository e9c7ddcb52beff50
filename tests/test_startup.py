"""Start-up: every setting that cannot work stops `burrow serve` with one clear line.

Each case runs `python -m burrow serve` as a real process: exit status 2 and one line
on stderr naming the setting (3 and one line for an engine that is down), never a
traceback, and never a server that starts. Settings are checked before anything is
bound or opened, so each case takes about as long as Python takes to start.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from burrow.backends import describe_backend
from burrow.cli import main
from burrow.config import Limits, MetricsSettings, Settings
from tests.conftest import ServerFactory
from tests.engines.redis import free_port


def serve(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`burrow serve` on any free port (unless BURROW_PORT is given), with no BURROW_*
    variable but those given. A server that does start is killed after 30 s: a failure."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BURROW_")}
    port = [] if "BURROW_PORT" in env else ["--port", "0"]
    return subprocess.run(
        [sys.executable, "-m", "burrow", "serve", *port, *args],
        cwd=cwd,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@dataclass(frozen=True)
class Bad:
    """A mistake: the flags, variables and files that make it, and what the line says."""

    says: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return " ".join([*self.args, *(f"{k}={v}" for k, v in self.env.items()), *self.files])


def config(text: str, *args: str) -> Bad:
    """A mistake in burrow.toml."""
    return Bad("", ("--config", "burrow.toml", *args), files={"burrow.toml": text})


def saying(says: str, bad: Bad) -> Bad:
    return Bad(says, bad.args, bad.env, bad.files)


KEYS = (
    '{"keys": [{"id": "k1", "secret_sha256": "0", "accounts": [], "role": "admin", "created": 0}]}'
)

MISTAKES = [
    # Ports and addresses
    Bad("--port must be a port from 1 to 65535, or 0 for any free port, not 99999",
        ("--port", "99999")),
    Bad("BURROW_PORT must be a port from 1 to 65535", env={"BURROW_PORT": "-1"}),
    Bad("--port must be an integer, not 'http'", ("--port", "http")),
    Bad("--host must not be empty", ("--host", "")),
    Bad("refusing to serve on 0.0.0.0 with no authentication", ("--host", "0.0.0.0")),
    Bad("--workers must be an integer >= 1, not 0", ("--workers", "0")),
    Bad("--workers > 1 needs a backend shared between processes",
        ("--workers", "2", "--backend", "memory://")),
    # Limits, server-wide and per account
    saying("[limits] max_limit in burrow.toml must be an integer >= 1, not 0",
           config("[limits]\nmax_limit = 0\n")),
    saying("[limits] max_limit in burrow.toml must be an integer >= 1, not -3",
           config("[limits]\nmax_limit = -3\n")),
    Bad("BURROW_LIMITS_MAX_BODY_BYTES must be an integer >= 1, not -1",
        env={"BURROW_LIMITS_MAX_BODY_BYTES": "-1"}),
    Bad("BURROW_LIMITS_MAX_WAIT must be an integer >= 0, not -1",
        env={"BURROW_LIMITS_MAX_WAIT": "-1"}),
    Bad("BURROW_LIMITS_BODY_TIMEOUT must be a number > 0, not 0.0",
        env={"BURROW_LIMITS_BODY_TIMEOUT": "0"}),
    Bad("BURROW_LIMITS_RATE_PER_ACCOUNT must be a number >= 0, not nan",
        env={"BURROW_LIMITS_RATE_PER_ACCOUNT": "nan"}),
    saying("[limits] default_limit in burrow.toml must be at most max_limit (50), not 100",
           config("[limits]\nmax_limit = 50\ndefault_limit = 100\n")),
    saying("[limits] max_ttl in burrow.toml must be an integer, not 1.5",
           config("[limits]\nmax_ttl = 1.5\n")),
    saying("[accounts.acme] max_wait in burrow.toml must be an integer >= 0, not -1",
           config("[accounts.acme]\nmax_wait = -1\n")),
    *(
        saying(f"[accounts.acme] {name} in burrow.toml: {name} is server-wide",
               config(f"[accounts.acme]\n{name} = 5\n"))
        for name in ("max_id_length", "header_timeout", "rate_per_credential",
                     "burst_per_credential")
    ),
    saying("unknown setting 'max_limt' in [limits]; known: max_body_bytes,",
           config("[limits]\nmax_limt = 5\n")),
    saying("unknown setting 'prot' in [server]; known: host, port,",
           config("[server]\nprot = 5\n")),
    Bad("unknown variable BURROW_LIMITS_MAX_LIMT", env={"BURROW_LIMITS_MAX_LIMT": "5"}),
    Bad("cannot read config file missing.toml", ("--config", "missing.toml")),
    Bad("cannot read config file burrow.toml", ("--config", "burrow.toml"),
        files={"burrow.toml": "[limits\n"}),
    # Log level and booleans
    saying("[server] log_level in burrow.toml must be one of debug, info, warning, error",
           config('[server]\nlog_level = "loud"\n')),
    Bad("BURROW_LOG_LEVEL must be one of debug, info, warning, error, not 'trace'",
        env={"BURROW_LOG_LEVEL": "trace"}),
    Bad("BURROW_ACCESS_LOG must be true or false (1/0, yes/no), not 'maybe'",
        env={"BURROW_ACCESS_LOG": "maybe"}),
    saying("[server] insecure in burrow.toml must be true or false",
           config("[server]\ninsecure = 2\n")),
    Bad("--log-format must be one of text, json, not 'xml'", ("--log-format", "xml")),
    # [metrics]
    saying("[metrics] queues in burrow.toml: 'jobs' is not ACCOUNT/QUEUE",
           config('[metrics]\nqueues = ["a/q", "jobs"]\n')),
    saying("[metrics] queues in burrow.toml must be a list of strings",
           config("[metrics]\nqueues = [1]\n")),
    Bad("BURROW_METRICS_TOP_QUEUES must be an integer, not 'many'",
        env={"BURROW_METRICS_TOP_QUEUES": "many"}),
    Bad("BURROW_METRICS_MAX_QUEUES must be an integer >= 1, not 0",
        env={"BURROW_METRICS_MAX_QUEUES": "0"}),
    saying("unknown setting 'tokens' in [metrics]", config('[metrics]\ntokens = "x"\n')),
    # Authentication
    Bad("auth keys:missing.json: no such key file; make one with `burrow keys add",
        ("--auth", "keys:missing.json")),
    Bad("cannot read key file keys.json", ("--auth", "keys:keys.json"),
        files={"keys.json": "not json"}),
    Bad("key file keys.json is malformed", ("--auth", "keys:keys.json"),
        files={"keys.json": '{"keys": [{"id": "k1"}]}'}),
    Bad("auth keys:keys.json: the key file holds no keys", ("--auth", "keys:keys.json"),
        files={"keys.json": '{"keys": []}'}),
    Bad("auth must be none or keys:PATH, not 'token'", ("--auth", "token")),
    # TLS
    Bad("--tls-cert: tls_cert and tls_key go together", ("--tls-cert", "cert.pem"),
        files={"cert.pem": "x"}),
    Bad("tls_cert missing.pem: no such file", ("--tls-cert", "missing.pem", "--tls-key", "k.pem"),
        files={"k.pem": "x"}),
    Bad("tls_cert cert.pem is not a PEM certificate", ("--tls-cert", "cert.pem", "--tls-key",
        "key.pem"), files={"cert.pem": "not a certificate", "key.pem": "x"}),
    # Backends
    Bad("backend 'nosuch://x': unknown scheme 'nosuch'; use one of memory://, sqlite:///PATH",
        ("--backend", "nosuch://x")),
    Bad("backend 'data.db': no scheme", ("--backend", "data.db")),
    Bad("sqlite:///:memory: is not supported: an in-memory SQLite database lives in one "
        "connection, and Burrow uses two; use memory:// for a store that does not persist",
        ("--backend", "sqlite:///:memory:")),
    Bad("is a file, not a data directory", ("--backend", "sqlite:///afile/burrow.db"),
        files={"afile": "x"}),
    Bad("backend 'sqlite://data.db' must look like sqlite:///relative/path",
        ("--backend", "sqlite://data.db")),
    Bad("unknown option 'bogus'; the options are durable, replicas, wait_ms",
        ("--backend", "redis://127.0.0.1:6379/0?durable=1&bogus=2")),
    Bad("durable must be 1/0, true/false or yes/no",
        ("--backend", "redis://127.0.0.1:6379/0?durable=maybe")),
    Bad("unknown option 'pool_sise'; the options are pool_size, command_timeout",
        ("--backend", "postgresql://127.0.0.1/db?pool_sise=3")),
    Bad("cannot read ring file", ("--backend", "ring:///missing.toml")),
    Bad("unknown ring setting(s) weight", ("--backend", "ring:///ring.toml"),
        files={"ring.toml": '[ring]\nzone = "az1"\nweight = 2\n'}),
]  # fmt: skip


@pytest.mark.parametrize("bad", MISTAKES, ids=[bad.id for bad in MISTAKES])
def test_a_setting_that_cannot_work_is_one_line_and_status_2(tmp_path: Path, bad: Bad) -> None:
    for name, text in bad.files.items():
        (tmp_path / name).write_text(text)
    result = serve(*bad.args, cwd=tmp_path, **bad.env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("Error: ") and bad.says in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was opened


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two self-signed certificates with their keys: 1.pem/1.key, 2.pem/2.key."""
    where = tmp_path_factory.mktemp("pems")
    for n in (1, 2):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-keyout", str(where / f"{n}.key"), "-out", str(where / f"{n}.pem")],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    return where


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path: Path, pems: Path) -> None:
    result = serve(
        "--tls-cert", str(pems / "1.pem"), "--tls-key", str(pems / "2.key"), cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"tls_key {pems / '2.key'} is not the PEM private key of tls_cert" in result.stderr


def test_a_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = serve("--backend", "memory://", "--port", port, cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr
        == f"Error: cannot listen on host 127.0.0.1 port {port}: Address already in use\n"
    )


def test_settings_are_checked_before_an_engine_is_reached(tmp_path: Path) -> None:
    # 10.255.255.1 does not answer: reaching it would take the 2 s connect timeout.
    result = serve(
        "--backend", "redis://10.255.255.1:6379/0", cwd=tmp_path, BURROW_LIMITS_MAX_LIMIT="0"
    )
    assert result.returncode == 2
    assert "BURROW_LIMITS_MAX_LIMIT" in result.stderr


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:{port}/0", "postgresql://burrow:secret@127.0.0.1:{port}/burrow"],
    ids=["redis", "postgresql"],
)
def test_an_engine_down_at_start_up_is_one_line_and_status_3(tmp_path: Path, url: str) -> None:
    url = url.format(port=free_port())
    result = serve("--backend", url, cwd=tmp_path)
    assert result.returncode == 3
    (line,) = result.stderr.splitlines()
    assert "ERROR burrow.server: cannot open the backend, " in line
    assert url.replace("burrow:secret@", "") in line and "secret" not in line


def test_workers_stop_with_status_3_when_their_engine_is_down(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = serve("--backend", url, "--workers", "2", cwd=tmp_path)
    assert result.returncode == 3
    assert "cannot open the backend" in result.stderr
    assert "Traceback" not in result.stderr


# The ready line, and settings from the environment ---------------------------------------


def ready_line(log: str) -> str:
    return next(line for line in log.splitlines() if "Burrow ready at" in line)


def test_the_ready_line_names_the_sqlite_file_and_the_auth_mode(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = start_server(None)
    line = ready_line(server.log())
    assert line.endswith(
        f"Burrow ready at {server.url} (worker {server.pid}): "
        f"backend sqlite {tmp_path}/data/burrow.db, auth none"
    )


def test_the_ready_line_of_memory_and_keys(start_server: ServerFactory, tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text(KEYS)
    server = start_server("memory://", "--auth", "keys:keys.json")
    assert ready_line(server.log()).endswith(
        f": backend memory (nothing persists), auth keys:{tmp_path}/keys.json (1 key)"
    )
    assert "authentication is off" not in server.log()


def test_the_ready_line_of_a_ring(start_server: ServerFactory, tmp_path: Path) -> None:
    member = start_server("memory://")
    (tmp_path / "ring.toml").write_text(
        f'[ring]\nzone = "az1"\n[[ring.member]]\nurl = "{member.url}"\nzone = "az1"\n'
    )
    ring = start_server("ring:///ring.toml")
    assert ready_line(ring.log()).endswith(f": backend ring {tmp_path}/ring.toml, auth none")


def test_every_setting_can_come_from_the_environment(
    start_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "burrow.toml").write_text("[limits]\nmax_body_bytes = 5\nmax_limit = 3\n")
    monkeypatch.setenv("BURROW_CONFIG", "burrow.toml")
    monkeypatch.setenv("BURROW_BACKEND", f"sqlite:///{tmp_path}/env.db")
    monkeypatch.setenv("BURROW_ACCESS_LOG", "Yes")
    monkeypatch.setenv("BURROW_LIMITS_MAX_BODY_BYTES", "10")  # the environment beats the file
    server = start_server(None)
    with httpx.Client(base_url=server.url) as http:
        assert http.put("/v1.0/a/q/m", content=b"x" * 11).status_code == 413
        assert http.put("/v1.0/a/q/m", content=b"x" * 10).status_code == 201
        assert http.get("/v1.0/a/q", params={"limit": 4}).status_code == 400  # from the file
    assert f"backend sqlite {tmp_path}/env.db" in ready_line(server.log())
    assert "uvicorn.access" in server.log()


def test_flags_beat_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    (tmp_path / "burrow.toml").write_text('[server]\nport = 1\nhost = "::1"\nworkers = 4\n')
    env = {"BURROW_PORT": "2", "BURROW_HOST": "127.0.0.2", "BURROW_INSECURE": "YES"}
    settings = Settings.load(str(tmp_path / "burrow.toml"), env, {"port": "3", "host": None})
    assert (settings.port, settings.host, settings.workers, settings.insecure) == (
        3,
        "127.0.0.2",
        4,
        True,
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("TRUE", True), ("yes", True), ("0", False), ("False", False), ("NO", False)],
)
def test_booleans_are_1_0_true_false_yes_no(text: str, value: bool) -> None:
    assert Settings.load(environ={"BURROW_ACCESS_LOG": text}).access_log is value


def test_unset_defaults_are_lowered_to_their_maximum() -> None:
    settings = Settings.load(
        environ={"BURROW_LIMITS_MAX_LIMIT": "50", "BURROW_LIMITS_MAX_TTL": "60"}
    )
    assert (settings.limits.default_limit, settings.limits.default_ttl) == (50, 60)


@pytest.mark.parametrize(
    ("url", "described"),
    [
        ("memory://", "memory (nothing persists)"),
        ("sqlite:////srv/burrow.db", "sqlite /srv/burrow.db"),
        ("ring:////etc/burrow/ring.toml", "ring /etc/burrow/ring.toml"),
        ("redis://10.0.0.1:6379/0?durable=1", "redis redis://10.0.0.1:6379/0?durable=1"),
        ("redis+cluster://h1:7000,h2:7000", "redis redis+cluster://h1:7000,h2:7000"),
        (
            "postgresql://burrow:s3cret@db:5432/q?sslmode=require&sslpassword=s3cret",
            "postgresql postgresql://db:5432/q?sslmode=require",
        ),
        ("http://tok.s3cret@proxy:8080", "http http://proxy:8080"),
    ],
)
def test_backends_are_described_without_secrets(url: str, described: str) -> None:
    assert describe_backend(url) == described


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name)


@pytest.mark.parametrize("path", list(commands(main)), ids=" ".join)
def test_h_is_help_on_every_command(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "-h"], prog_name="burrow")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: burrow {' '.join(path)}".rstrip())


def test_version(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "burrow", "--version"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert result.stdout == f"burrow, version {version('burrow')}\n"


def test_sign_refuses_methods_the_api_does_not_have(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text(KEYS)
    args = ["sign", "--file", "keys.json", "--key-id", "k1", "--path", "/v1.0/a"]
    result = subprocess.run(
        [sys.executable, "-m", "burrow", *args, "--method", "GET,PATCH"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "no method PATCH in the API: a signed URL grants some of DELETE, GET, POST, PUT" in (
        result.stderr
    )


ROW = re.compile(r"^\| `(\w+)` \|(?: [^|]+ \|)? `(BURROW_\w+)` \| `([^`]*)`", re.MULTILINE)


def test_the_configuration_docs_give_every_setting_its_variable_and_default() -> None:
    documented = {
        name: (variable, default.strip('"'))
        for name, variable, default in ROW.findall(
            (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
        )
    }
    sections = ("limits", "accounts", "metrics")
    fields = [f.name for f in dataclasses.fields(Settings) if f.name not in sections]
    fields += [f.name for f in (*dataclasses.fields(Limits), *dataclasses.fields(MetricsSettings))]
    assert sorted(documented) == sorted(fields)
    for variable, default in documented.values():
        # The variable is the one read, and its documented default is the default.
        assert Settings.load(environ={variable: default}) == Settings(), variable
