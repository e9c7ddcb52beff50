"""The dashboard's files at /ui/ and /whoami, over HTTP against a real server with keys."""

from __future__ import annotations

from importlib import resources

import httpx
import pytest

from tests import test_auth
from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.test_auth import Tokens

secured = test_auth.secured  # a server with --auth keys: a writer and a reader of "a", an admin

FILES = [
    ("", "index.html", "text/html; charset=utf-8"),
    ("app.js", "app.js", "text/javascript; charset=utf-8"),
    ("style.css", "style.css", "text/css; charset=utf-8"),
]


@pytest.mark.parametrize(("path", "name", "content_type"), FILES)
def test_files_load_without_a_token_under_a_strict_policy(
    secured: tuple[BurrowServer, Tokens], path: str, name: str, content_type: str
) -> None:
    server, _ = secured
    response = httpx.get(f"{server.url}/ui/{path}")
    assert response.status_code == 200
    assert response.content == resources.files("burrow").joinpath("ui", name).read_bytes()
    assert response.headers["content-type"] == content_type
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    unchanged = {"If-None-Match": response.headers["etag"]}
    again = httpx.get(f"{server.url}/ui/{path}", headers=unchanged)
    assert (again.status_code, again.content) == (304, b"")
    head = httpx.head(f"{server.url}/ui/{path}")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(response.content))


def test_ui_redirects_to_the_page(secured: tuple[BurrowServer, Tokens]) -> None:
    server, _ = secured
    response = httpx.get(f"{server.url}/ui")
    assert (response.status_code, response.headers["location"]) == (308, "ui/")
    assert httpx.get(f"{server.url}/ui", follow_redirects=True).text.startswith("<!doctype html>")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/ui/keys.json", 404),
        ("GET", "/ui/%2E%2E%2Fui.py", 404),
        ("GET", "/ui/app.js/x", 404),
        ("GET", "/ui/index.html?x=1", 400),
        ("POST", "/ui/", 405),
        ("DELETE", "/ui/app.js", 405),
        ("POST", "/whoami", 405),
        ("GET", "/whoami?role=admin", 400),
    ],
)
def test_other_requests_get_a_json_error(
    secured: tuple[BurrowServer, Tokens], method: str, path: str, status: int
) -> None:
    server, tokens = secured
    headers = {"X-Auth-Token": tokens.admin}
    response = httpx.request(method, server.url + path, headers=headers)
    assert response.status_code == status
    assert "error" in response.json()


def test_whoami_tells_each_key_its_role(secured: tuple[BurrowServer, Tokens]) -> None:
    server, tokens = secured
    for token, role, accounts in [
        (tokens.admin, "admin", []),
        (tokens.writer_a, "writer", ["a"]),
        (tokens.reader_a, "reader", ["a"]),
    ]:
        response = httpx.get(server.url + "/whoami", headers={"X-Auth-Token": token})
        expected = {"key": token.partition(".")[0], "role": role, "accounts": accounts}
        assert (response.status_code, response.json()) == (200, expected)


def test_whoami_refuses_a_missing_or_unknown_token(secured: tuple[BurrowServer, Tokens]) -> None:
    server, tokens = secured
    assert httpx.get(server.url + "/whoami").status_code == 401
    forged = tokens.admin.partition(".")[0] + ".not-its-secret"
    response = httpx.get(server.url + "/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert "by key -: unknown or revoked token" in server.log()  # audited like any call


def test_whoami_without_keys_has_no_role(start_server: ServerFactory) -> None:
    server = start_server("memory://")
    response = httpx.get(server.url + "/whoami")
    assert response.json() == {"key": None, "role": None, "accounts": []}
