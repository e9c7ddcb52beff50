"""Signed URLs are signed with the server's secret, not with anything in the key file."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.test_auth import add_key, burrow, retarget, sign_url


def minted_from_the_key_file(keyfile: Path, key_id: str, server: BurrowServer) -> str:
    """A signed URL made from the key file alone, keyed by the key's stored digest."""
    (stored,) = [k for k in json.loads(keyfile.read_text())["keys"] if k["id"] == key_id]
    grant = {"sig_key": key_id, "sig_expires": str(int(time.time()) + 600)}
    grant |= {"sig_methods": "DELETE,GET,POST,PUT", "sig_prefix": "/v1.0/a"}
    text = "\n".join(
        grant[name] for name in ("sig_key", "sig_methods", "sig_prefix", "sig_expires")
    )
    sig = hmac.new(stored["secret_sha256"].encode(), text.encode(), hashlib.sha256).hexdigest()
    return f"{server.url}/v1.0/a/q?{urlencode({'sig': sig, **grant})}"


def test_a_leaked_key_file_lets_no_one_sign(start_server: ServerFactory, tmp_path: Path) -> None:
    keyfile = tmp_path / "keys.json"
    admin = add_key(keyfile, "admin")
    server = start_server("memory://", "--auth", f"keys:{keyfile}")
    forged = httpx.get(minted_from_the_key_file(keyfile, admin.partition(".")[0], server))
    assert forged.status_code == 401
    assert forged.json() == {"error": "bad signature"}
    assert "bad signature" in server.log()


def test_the_secret_is_made_once_owner_only_and_outlives_restarts(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    keyfile = tmp_path / "keys.json"
    writer = add_key(keyfile, "writer", "a")
    secret = tmp_path / "signing.secret"
    first = start_server("memory://", "--auth", f"keys:{keyfile}")
    assert f"made a new signing secret {secret} (mode 0600)" in first.log()
    assert secret.stat().st_mode & 0o777 == 0o600
    made = secret.read_bytes()
    assert len(made.strip()) >= 32
    url = sign_url(keyfile, writer, "GET", "/v1.0/a")
    assert httpx.get(retarget(url, first)).status_code == 404  # allowed; the account is empty
    first.stop()
    again = start_server("memory://", "--auth", f"keys:{keyfile}")
    assert f"signed URLs are signed with the secret in {secret}" in again.log()
    assert "made a new" not in again.log()
    assert secret.read_bytes() == made
    assert httpx.get(retarget(url, again)).status_code == 404


def test_rotating_the_secret_ends_every_signed_url(
    start_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyfile = tmp_path / "keys.json"
    writer = add_key(keyfile, "writer", "a")
    secret = tmp_path / "elsewhere" / "signing.secret"
    secret.parent.mkdir()
    secret.write_text("first secret, of at least 32 bytes\n")
    given = ("--auth", f"keys:{keyfile}", "--signing-secret-file", str(secret))
    server = start_server("memory://", *given)
    assert not (tmp_path / "signing.secret").exists()  # the one given is used, none is made
    monkeypatch.setenv("BURROW_SIGNING_SECRET_FILE", str(secret))  # for `burrow sign`
    args = ["sign", "--file", str(keyfile), "--key-id", writer.partition(".")[0]]
    old = burrow(*args, "--method", "GET", "--path", "/v1.0/a", cwd=tmp_path)
    assert old.returncode == 0, old.stderr
    assert httpx.get(retarget(old.stdout.strip(), server)).status_code == 404
    server.stop()
    secret.write_text("the next secret, of 32 bytes or more\n")
    server = start_server("memory://", *given)
    assert httpx.get(retarget(old.stdout.strip(), server)).status_code == 401
    new = burrow(*args, "--method", "GET", "--path", "/v1.0/a", cwd=tmp_path)
    assert httpx.get(retarget(new.stdout.strip(), server)).status_code == 404


def test_a_secret_that_cannot_be_used_stops_the_server(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys.json"
    add_key(keyfile, "admin")
    (tmp_path / "short").write_text("0123456789\n")
    serve = ["serve", "--port", "0", "--backend", "memory://", "--auth", f"keys:{keyfile}"]
    for secret, said in (
        ("missing", "cannot read the signing secret missing: No such file or directory"),
        ("short", "the signing secret short holds 10 bytes; it needs 32 or more"),
    ):
        result = burrow(*serve, "--signing-secret-file", secret, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert said in result.stderr


def test_burrow_sign_and_keys_sqs_need_the_secret_and_never_make_one(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys.json"
    key_id = add_key(keyfile, "writer", "a").partition(".")[0]
    sign = [
        "sign",
        "--file",
        str(keyfile),
        "--key-id",
        key_id,
        "--method",
        "GET",
        "--path",
        "/v1.0/a",
    ]
    sqs = ["keys", "sqs", "--file", str(keyfile), key_id]
    for command in (sign, sqs):
        result = burrow(*command, cwd=tmp_path)
        assert result.returncode == 1
        assert (
            f"no signing secret {tmp_path}/signing.secret yet: the server makes it on its "
            f"first start with --auth keys:{keyfile}, or give --signing-secret-file"
        ) in result.stderr
        result = burrow(*command, "--signing-secret-file", "missing", cwd=tmp_path)
        assert result.returncode == 1
        assert "cannot read the signing secret missing: No such file" in result.stderr
    assert not (tmp_path / "signing.secret").exists()


def test_a_signature_outside_ascii_is_a_401(start_server: ServerFactory, tmp_path: Path) -> None:
    keyfile = tmp_path / "keys.json"
    writer = add_key(keyfile, "writer", "a")
    server = start_server("memory://", "--auth", f"keys:{keyfile}")
    url = retarget(sign_url(keyfile, writer, "GET", "/v1.0/a"), server)
    for tampered in (
        retarget(url, server, sig="é" * 64),
        retarget(url, server, sig="\u0663" * 64),
        retarget(url, server, sig_expires="\u0663" * 10),  # digits, but not ASCII ones
    ):
        response = httpx.get(tampered)
        assert response.status_code == 401, (tampered, response.text)
    assert "Traceback" not in server.log()
