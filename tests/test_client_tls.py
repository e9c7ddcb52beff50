"""The client and CLI against `burrow serve` over TLS, its certificate signed by a private CA."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from burrow.cli_client import register
from burrow.client import Client
from burrow.errors import BackendUnavailable
from tests.servers import BurrowServer


@dataclass(frozen=True)
class Pki:
    ca: Path
    """The private CA's certificate: what `--cacert` is given."""
    cert: Path
    key: Path


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def make_pki(folder: Path) -> Pki:
    """A CA, and a certificate for 127.0.0.1 that it signs (the CA's own is not the server's)."""
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, request = folder / "server.pem", folder / "server.key", folder / "server.csr"
    extensions = folder / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=Burrow test CA", "-keyout", ca_key, "-out", ca)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", key, "-out", request)  # fmt: skip
    openssl("x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-days", "1", "-extfile", extensions, "-out", cert)  # fmt: skip
    return Pki(ca, cert, key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def https_servers(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[list[str]]:
    """Two TLS servers with the CA-signed certificate; their https:// URLs."""
    workdir = tmp_path_factory.mktemp("tls-servers")
    tls = ("--tls-cert", str(pki.cert), "--tls-key", str(pki.key))
    servers = [BurrowServer(workdir, "memory://", *tls) for _ in range(2)]
    try:
        yield [server.start().url for server in servers]
    finally:
        for server in servers:
            server.kill()


@pytest.fixture(scope="module")
def https_url(https_servers: list[str]) -> str:
    url = https_servers[0]
    assert url.startswith("https://")
    return url


def test_verify_with_the_ca_bundle(https_url: str, pki: Pki, account: str) -> None:
    for verify in (str(pki.ca), pki.ca, ssl.create_default_context(cafile=pki.ca)):
        with Client(https_url, account, verify=verify) as client:
            client.queue("q").put("secret", id="m")
            assert client.queue("q").get_one("m").body == b"secret"


def test_without_the_ca_the_certificate_is_refused(https_url: str, account: str) -> None:
    with Client(https_url, account) as client, pytest.raises(BackendUnavailable) as raised:
        client.queue("q").get()
    assert "CERTIFICATE_VERIFY_FAILED" in raised.value.message
    assert "--cacert PATH, verify=PATH" in raised.value.message
    with Client(https_url, account, verify=False) as unchecked:
        assert unchecked.queue("q").get() == []


def test_long_polls_on_several_servers_trust_the_ca(
    https_servers: list[str], pki: Pki, account: str
) -> None:
    # Waiting on several servers opens connections of its own: they check with the CA too.
    with Client(https_servers, account, verify=pki.ca) as client:
        assert client.queue("q").claim(wait=1) == []


def test_a_bad_ca_bundle_is_refused_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="cannot load the CA bundle"):
        Client("https://127.0.0.1:1", "a", verify=bad)


# The command line ------------------------------------------------------------------------------


def burrow(*args: str, **env: str) -> Result:
    group = click.Group("burrow")
    register(group)
    return CliRunner().invoke(group, args, env=env)


def test_cli_cacert_option_and_env(https_url: str, pki: Pki, account: str) -> None:
    put = burrow(
        "put", account, "q", "--body", "hi", "--server", https_url, "--cacert", str(pki.ca)
    )
    assert put.exit_code == 0, put.output
    listed = burrow("ls", account, "q", BURROW_URL=https_url, BURROW_CACERT=str(pki.ca))
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.endswith("\thi\n")
    refused = burrow("ls", account, "q", BURROW_URL=https_url)
    assert refused.exit_code == 1
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    assert "--cacert" in refused.stderr


def test_cli_refuses_a_bad_cacert(https_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    for path in (str(bad), str(tmp_path / "absent.pem")):
        result = burrow("ls", "--server", https_url, "--cacert", path)
        assert result.exit_code == 2
        assert "--cacert" in result.stderr
