"""Keys, roles and tenant isolation against a real server with `--auth keys:PATH`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from burrow import sigv4
from burrow.auth import ALLOWED, Credentials, KeyGuard, OpenAccess, Verdict
from burrow.client import Client
from burrow.errors import Forbidden
from burrow.sigv4 import AccessDenied, SigV4Refused
from tests import test_sigv4
from tests.conftest import ServerFactory
from tests.servers import BurrowServer


def burrow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "burrow", *args], cwd=cwd, capture_output=True, text=True, timeout=30
    )


def add_key(keyfile: Path, role: str, *accounts: str) -> str:
    args = ["keys", "add", "--file", str(keyfile), "--role", role]
    for account in accounts:
        args += ["--account", account]
    result = burrow(*args, cwd=keyfile.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@dataclass(frozen=True)
class Tokens:
    writer_a: str
    reader_a: str
    admin: str


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BurrowServer, Tokens]]:
    workdir = tmp_path_factory.mktemp("auth")
    keyfile = workdir / "keys.json"
    tokens = Tokens(
        add_key(keyfile, "writer", "a"), add_key(keyfile, "reader", "a"), add_key(keyfile, "admin")
    )
    server = BurrowServer(workdir, "memory://", "--auth", f"keys:{keyfile}").start()
    yield server, tokens
    server.kill()


def test_key_file_keeps_no_token(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys.json"
    token = add_key(keyfile, "writer", "a", "b")
    key_id, _, secret = token.partition(".")
    stored = keyfile.read_text()
    assert key_id in stored and secret not in stored
    assert keyfile.stat().st_mode & 0o077 == 0
    listed = burrow("keys", "list", "--file", str(keyfile), cwd=tmp_path).stdout
    assert listed.startswith(f"{key_id}\twriter\ta,b\t")
    assert burrow("keys", "revoke", "--file", str(keyfile), key_id, cwd=tmp_path).returncode == 0
    assert burrow("keys", "list", "--file", str(keyfile), cwd=tmp_path).stdout == ""


def test_reader_and_writer_keys_need_an_account(tmp_path: Path) -> None:
    result = burrow("keys", "add", "--file", str(tmp_path / "k.json"), cwd=tmp_path)
    assert result.returncode == 1
    assert "needs at least one --account" in result.stderr


ROUTES = [
    ("GET", "/v1.0"),
    ("DELETE", "/v1.0"),
    ("GET", "/v1.0/{acct}"),
    ("DELETE", "/v1.0/{acct}"),
    ("GET", "/v1.0/{acct}/q"),
    ("PUT", "/v1.0/{acct}/q"),
    ("POST", "/v1.0/{acct}/q"),
    ("DELETE", "/v1.0/{acct}/q"),
    ("GET", "/v1.0/{acct}/q/m"),
    ("PUT", "/v1.0/{acct}/q/m"),
    ("POST", "/v1.0/{acct}/q/m"),
    ("DELETE", "/v1.0/{acct}/q/m"),
]


def expected(credential: str, method: str, account: str | None) -> int | None:
    """The refusal a credential gets (401/403), or None when it is allowed."""
    if credential in ("none", "unknown", "malformed"):
        return 401
    if credential == "admin":
        return None
    if account != "a":
        return 403  # another tenant, or every tenant at once
    if credential == "reader" and method != "GET":
        return 403
    return None


def seed(http: httpx.Client, admin: str) -> None:
    for account in ("a", "b"):
        put = http.put(f"/v1.0/{account}/q/m", content=b"seed", headers={"X-Auth-Token": admin})
        assert put.status_code in (201, 204)


def body_of_b(http: httpx.Client, admin: str) -> bytes:
    response = http.get("/v1.0/b/q/m", params={"detail": "body"}, headers={"X-Auth-Token": admin})
    return response.content if response.status_code == 200 else b"<gone>"


CREDENTIALS = ["none", "unknown", "malformed", "writer", "reader", "admin"]


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("account", ["a", "b"])
def test_isolation_matrix(
    secured: tuple[BurrowServer, Tokens], credential: str, account: str
) -> None:
    server, tokens = secured
    header_for = {
        "none": {},
        "unknown": {"X-Auth-Token": "0123456789ab.not-a-real-secret"},
        "malformed": {"Authorization": "Bearer no-dot-in-it"},
        "writer": {"Authorization": f"Bearer {tokens.writer_a}"},
        "reader": {"X-Auth-Token": tokens.reader_a},
        "admin": {"X-Auth-Token": tokens.admin},
    }
    with httpx.Client(base_url=server.url) as http:
        for method, template in ROUTES:
            seed(http, tokens.admin)
            target = None if template == "/v1.0" else account
            body = b'[{"body": "x"}]' if template.endswith("/q") and method == "PUT" else b"x"
            url = template.format(acct=account)
            response = http.request(method, url, headers=header_for[credential], content=body)
            refusal = expected(credential, method, target)
            if refusal is None:
                assert response.status_code not in (401, 403), (method, url, response.text)
            else:
                assert response.status_code == refusal, (method, url, response.text)
                assert "error" in response.json()
                if refusal == 401:
                    assert response.headers["www-authenticate"] == "Bearer"
            if credential != "admin" and account == "a":
                assert body_of_b(http, tokens.admin) == b"seed", (method, url)


def test_health_and_versions_need_no_token(secured: tuple[BurrowServer, Tokens]) -> None:
    server, _ = secured
    assert httpx.get(server.url + "/").json() == ["v1.0"]
    assert httpx.get(server.url + "/health").status_code == 200


def test_refusals_are_audited_without_tokens(secured: tuple[BurrowServer, Tokens]) -> None:
    server, tokens = secured
    writer_id = tokens.writer_a.partition(".")[0]
    headers = {"X-Auth-Token": tokens.writer_a}
    assert httpx.get(server.url + "/v1.0/b/q", headers=headers).status_code == 403
    assert httpx.get(server.url + "/v1.0/a/q").status_code == 401
    log = server.log()
    assert f"403 GET on account b by key {writer_id}" in log
    assert "401 GET on account a by key -: no token given" in log
    assert tokens.writer_a.partition(".")[2] not in log


def test_key_file_changes_apply_without_restart(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    keyfile = tmp_path / "keys.json"
    admin = add_key(keyfile, "admin")
    server = start_server("memory://", "--auth", f"keys:{keyfile}")
    late = add_key(keyfile, "writer", "late")

    def status(token: str) -> int:
        headers = {"X-Auth-Token": token}
        return httpx.put(server.url + "/v1.0/late/q/m", content=b"x", headers=headers).status_code

    deadline = time.monotonic() + 5
    while status(late) == 401 and time.monotonic() < deadline:
        time.sleep(0.1)  # the server looks at the file at most once a second
    assert status(late) == 204
    burrow("keys", "revoke", "--file", str(keyfile), late.partition(".")[0], cwd=tmp_path)
    deadline = time.monotonic() + 5
    while status(late) != 401 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status(late) == 401
    assert status(admin) == 204


def test_no_auth_off_loopback_needs_insecure(tmp_path: Path) -> None:
    result = burrow(
        "serve", "--host", "0.0.0.0", "--port", "0", "--backend", "memory://", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 with no authentication" in result.stderr


def sign_url(keyfile: Path, token: str, methods: str, prefix: str, seconds: int = 60) -> str:
    key_id = token.partition(".")[0]
    args = ["sign", "--file", str(keyfile), "--key-id", key_id, "--method", methods]
    result = burrow(*args, "--path", prefix, "--expires", str(seconds), cwd=keyfile.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def retarget(url: str, server: BurrowServer, path: str | None = None, **changes: str) -> str:
    parts = httpx.URL(url)
    query = dict(parts.params) | changes
    return str(httpx.URL(server.url + (path or parts.path), params=query))


def test_signed_urls_grant_exactly_what_they_say(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    keyfile = tmp_path / "keys.json"
    writer = add_key(keyfile, "writer", "a")
    reader = add_key(keyfile, "reader", "a")
    server = start_server("memory://", "--auth", f"keys:{keyfile}")
    url = retarget(sign_url(keyfile, writer, "get,PUT", "/v1.0/a/q"), server)

    assert httpx.put(url.replace("/v1.0/a/q?", "/v1.0/a/q/m?"), content=b"x").status_code == 201
    assert httpx.get(url).json()[0]["body"] == "x"
    assert httpx.delete(url).status_code == 401  # a method it does not grant
    for tampered in (
        retarget(url, server, "/v1.0/a/q2"),  # outside the prefix
        retarget(url, server, "/v1.0/a/qq"),  # a prefix of the name is not the path
        retarget(url, server, sig_methods="DELETE,GET,PUT"),
        retarget(url, server, sig_prefix="/v1.0/a"),
        retarget(url, server, sig_expires=str(int(time.time()) + 99999)),
        retarget(url, server, sig="0" * 64),
        retarget(url, server, sig_key="nobody"),
    ):
        assert httpx.get(tampered).status_code == 401, tampered
    # The key's role still applies: a reader's signed URL cannot write.
    read_only = retarget(sign_url(keyfile, reader, "GET,POST", "/v1.0/a"), server)
    assert httpx.get(read_only).status_code == 200
    assert httpx.post(read_only.replace("/v1.0/a?", "/v1.0/a/q?")).status_code == 403


def test_signed_urls_expire_and_die_with_their_key(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    keyfile = tmp_path / "keys.json"
    writer = add_key(keyfile, "writer", "a")
    server = start_server("memory://", "--auth", f"keys:{keyfile}")
    long = retarget(sign_url(keyfile, writer, "GET", "/v1.0/a"), server)
    # Expiry is whole epoch seconds: 2 s from now leaves at least 1 s for the first call.
    short = retarget(sign_url(keyfile, writer, "GET", "/v1.0/a", seconds=2), server)
    assert httpx.get(short).status_code == 404  # allowed; the account is empty
    time.sleep(2.05)  # past the expiry
    assert httpx.get(short).status_code == 401
    burrow("keys", "revoke", "--file", str(keyfile), writer.partition(".")[0], cwd=tmp_path)
    deadline = time.monotonic() + 5
    while httpx.get(long).status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.1)
    revoked = httpx.get(long)
    assert revoked.status_code == 401
    assert revoked.json() == {"error": "signed URL's key revoked or unknown"}
    malformed = httpx.get(retarget(long, server, sig_expires="soon"))
    assert malformed.json() == {"error": "malformed signed URL"}


def test_a_token_holder_gets_signed_urls_from_the_server(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    keyfile = tmp_path / "keys.json"
    writer = add_key(keyfile, "writer", "a")
    reader = add_key(keyfile, "reader", "a")
    server = start_server("memory://", "--auth", f"keys:{keyfile}")
    with Client(server.url, "a", token=writer) as client:
        client.queue("q").put(b"shared", "m")
    order = {"path": "/v1.0/a/q", "methods": ["GET"], "expires": 60}
    signed = httpx.post(server.url + "/sign", json=order, headers={"X-Auth-Token": writer})
    assert signed.status_code == 200, signed.text
    url = server.url + signed.json()["url"]
    assert url.startswith(server.url + "/v1.0/a/q?sig=")
    assert httpx.get(url).json()[0]["body"] == "shared"
    assert httpx.delete(url).status_code == 401
    # Only within the token's own rights, and only for a token.
    writes = order | {"methods": ["GET", "PUT"]}
    assert (
        httpx.post(server.url + "/sign", json=writes, headers={"X-Auth-Token": reader}).status_code
        == 403
    )
    other = order | {"path": "/v1.0/b"}
    assert (
        httpx.post(server.url + "/sign", json=other, headers={"X-Auth-Token": writer}).status_code
        == 403
    )
    assert httpx.post(server.url + "/sign", json=order).status_code == 401
    # The client asks the same of its (first) server.
    with Client(server.url, "a", token=writer) as client:
        by_client = client.signed_url("/v1.0/a/q", ["GET"], 60)
    assert by_client.startswith(server.url + "/v1.0/a/q?sig=")
    assert httpx.get(by_client).json()[0]["body"] == "shared"
    with Client(server.url, "a", token=reader) as client, pytest.raises(Forbidden):
        client.signed_url("/v1.0/a/q", ["PUT"], 60)
    assert httpx.post(server.url + "/sign?" + url.partition("?")[2], json=order).status_code == 400


# SigV4: the SQS frontend's credentials ---------------------------------------------------


@dataclass(frozen=True)
class SqsKeys:
    guard: KeyGuard
    writer: tuple[str, str]  # access key id, secret access key
    reader: tuple[str, str]
    admin: tuple[str, str]


def sqs_credentials(keyfile: Path, token: str) -> tuple[str, str]:
    """What `burrow keys sqs` prints for the key of `token`, read back."""
    key_id = token.partition(".")[0]
    result = burrow("keys", "sqs", "--file", str(keyfile), key_id, cwd=keyfile.parent)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" = ") for line in result.stdout.splitlines())
    assert lines["aws_access_key_id"] == key_id
    return key_id, lines["aws_secret_access_key"]


@pytest.fixture(scope="module")
def sqs_keys(tmp_path_factory: pytest.TempPathFactory) -> SqsKeys:
    keyfile = tmp_path_factory.mktemp("sqs-keys") / "keys.json"
    tokens = [add_key(keyfile, "writer", "a", "b2"), add_key(keyfile, "reader", "a")]
    tokens.append(add_key(keyfile, "admin"))
    guard = KeyGuard(keyfile)  # makes signing.secret next to the key file
    writer, reader, admin = (sqs_credentials(keyfile, token) for token in tokens)
    return SqsKeys(guard, writer, reader, admin)


def sigv4_credentials(credentials: tuple[str, str], **signing: Any) -> Credentials:
    access_key_id, secret = credentials
    wire = test_sigv4.signed(secret=secret, access_key_id=access_key_id, **signing)
    return Credentials(None, "", sigv4=sigv4.parse(*wire))


def test_a_keys_sqs_credentials_sign_within_its_rights(sqs_keys: SqsKeys) -> None:
    guard = sqs_keys.guard
    writer = sigv4_credentials(sqs_keys.writer)
    reader = sigv4_credentials(sqs_keys.reader)
    admin = sigv4_credentials(sqs_keys.admin)
    assert guard.check(writer, "POST", "a") == Verdict(sqs_keys.writer[0])
    assert guard.check(reader, "GET", "a") == Verdict(sqs_keys.reader[0])
    assert guard.check(admin, "POST", "z") == Verdict(sqs_keys.admin[0])
    for credentials, method, account in ((writer, "POST", "c"), (reader, "POST", "a")):
        verdict = guard.check(credentials, method, account)
        assert isinstance(verdict.refusal, AccessDenied), (method, account)
        assert (verdict.refusal.sqs_code, verdict.refusal.status) == ("AccessDenied", 403)
    assert guard.home_account(writer) == "a"  # the key's first account
    assert guard.home_account(admin) is None  # it has none: the endpoint must name one


def test_wrong_unknown_or_stale_sqs_credentials_are_refused(sqs_keys: SqsKeys) -> None:
    guard = sqs_keys.guard
    key_id, secret = sqs_keys.writer
    stale = sigv4_credentials(sqs_keys.writer)
    assert stale.sigv4 is not None
    refusals = {
        "wrong secret": (sigv4_credentials((key_id, secret[:-1] + "x")), key_id),
        "unknown key": (sigv4_credentials(("feedfacecafe", secret)), None),
        "another service": (sigv4_credentials(sqs_keys.writer, service="sns"), key_id),
        "20 minutes ago": (
            Credentials(None, "", sigv4=replace(stale.sigv4, timestamp=_minutes_ago(20))),
            key_id,
        ),
    }
    codes = {}
    for case, (credentials, named) in refusals.items():
        verdict = guard.check(credentials, "POST", "a")
        assert isinstance(verdict.refusal, SigV4Refused), case
        assert verdict.refusal.status == 401 and verdict.key_id == named, case
        codes[case] = verdict.refusal.sqs_code
    assert codes == {
        "wrong secret": "SignatureDoesNotMatch",
        "unknown key": "InvalidClientTokenId",
        "another service": "SignatureDoesNotMatch",
        "20 minutes ago": "SignatureDoesNotMatch",
    }
    # An unknown key's home account is its id, so that admission refuses it (401) too.
    assert guard.home_account(refusals["unknown key"][0]) == "feedfacecafe"


def _minutes_ago(minutes: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 60 * minutes))


def test_sqs_secrets_come_from_the_signing_secret_not_the_key_file(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys.json"
    token = add_key(keyfile, "writer", "a")
    KeyGuard(keyfile)  # makes signing.secret next to the key file
    key_id, secret = sqs_credentials(keyfile, token)
    assert secret not in keyfile.read_text()
    exported = burrow("keys", "sqs", "--file", str(keyfile), key_id, "--env", cwd=keyfile.parent)
    assert exported.stdout.splitlines() == [
        f"export AWS_ACCESS_KEY_ID={key_id}",
        f"export AWS_SECRET_ACCESS_KEY={secret}",
    ]
    (keyfile.parent / "signing.secret").write_text("another secret, of 32 bytes or more\n")
    rotated = sqs_credentials(keyfile, key_id + ".")
    assert rotated[1] != secret
    unknown = burrow("keys", "sqs", "--file", str(keyfile), "nobody", cwd=keyfile.parent)
    assert unknown.returncode == 1 and "no key 'nobody'" in unknown.stderr
    added = burrow("keys", "add", "--file", str(keyfile), "--account", "a", cwd=keyfile.parent)
    new_id = added.stdout.partition(".")[0]
    assert f"its SQS credentials: burrow keys sqs {new_id} --file {keyfile}" in added.stderr


def test_with_no_keys_any_sqs_credentials_pass_and_name_the_account() -> None:
    credentials = sigv4_credentials(("tenant-7", "any secret at all"))
    assert OpenAccess().check(credentials, "POST", "tenant-7") == ALLOWED
    assert OpenAccess().home_account(credentials) == "tenant-7"
    assert OpenAccess().home_account(Credentials(None, "")) is None
