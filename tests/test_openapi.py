"""The OpenAPI document: complete, and true of a live server under schemathesis."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from burrow.auth import OpenAccess
from burrow.config import Limits
from burrow.errors import BurrowError, InvalidRequest
from burrow.frontends.burrow_v1 import BurrowV1
from burrow.frontends.openapi import document
from burrow.service import Service
from tests.conftest import ServerFactory
from tests.test_auth import add_key

SHAPE_TO_PATH = {
    0: "/v1.0",
    1: "/v1.0/{account}",
    2: "/v1.0/{account}/{queue}",
    3: "/v1.0/{account}/{queue}/{message}",
    "counts": "/v1.0/{account}/{queue}/-/counts",
    "delete": "/v1.0/{account}/{queue}/-/delete",
    "info": "/v1.0/{account}/{queue}/-/info",
    "subscriptions": "/v1.0/{account}/{queue}/-/subscriptions",
    "subscription": "/v1.0/{account}/{queue}/-/subscriptions/{name}",
}


def test_every_route_and_parameter_is_documented() -> None:
    frontend = BurrowV1(Service(None, Limits()), OpenAccess())  # type: ignore[arg-type]
    paths = document(Limits())["paths"]
    for (shape, method), (_, accepted) in frontend.routes.items():
        operation = paths[SHAPE_TO_PATH[shape]][method.lower()]
        documented = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        assert documented == set(accepted), (shape, method)
    routed = {SHAPE_TO_PATH[shape] for shape, _ in frontend.routes}
    assert {path for path in paths if path.startswith("/v1.0")} == routed
    assert {"/", "/health", "/openapi.json"} <= paths.keys()


V1_STATUSES = {400, 401, 403, 404, 405, 408, 429, 501, 503}  # any call below /v1.0
BODY_STATUSES = {409, 413}  # a call that takes a body, besides
STORES_NOTHING = {("/v1.0/{account}/{queue}/-/delete", "post")}  # a body, but no quota (409)
META_STATUSES = {200, 400, 405, 408, 501}  # `/`, `/health` (and 503), `/openapi.json`


def test_every_status_the_server_answers_is_documented() -> None:
    paths = document(Limits())["paths"]
    documented: set[int] = set()
    for path, item in paths.items():
        for method, operation in item.items():
            statuses = {int(status) for status in operation["responses"]}
            documented |= statuses
            if not path.startswith("/v1.0"):
                expected = META_STATUSES | ({503} if path == "/health" else set())
            else:
                expected = V1_STATUSES | (BODY_STATUSES if "requestBody" in operation else set())
                if (path, method) in STORES_NOTHING:
                    expected -= {409}
            assert expected <= statuses, (path, method, expected - statuses)
    answered = {category.status for category in BurrowError.__subclasses__()}
    assert answered - {BurrowError.status} <= documented  # (500: not an answer of the API)
    assert paths["/v1.0"]["get"]["responses"]["405"]["headers"].keys() == {"Allow"}
    assert paths["/v1.0"]["get"]["responses"]["429"]["headers"].keys() == {"Retry-After"}


def test_a_method_a_path_does_not_list_answers_405_naming_those_it_lists(server_url: str) -> None:
    paths = httpx.get(server_url + "/openapi.json").json()["paths"]
    for template, item in paths.items():
        url = server_url + template.format(account="a", queue="q", message="m", name="s")
        listed = {method.upper() for method in item}
        for method in {"GET", "PUT", "POST", "DELETE", "PATCH"} - listed:
            response = httpx.request(method, url)
            assert response.status_code == 405, (method, template)
            assert set(response.headers["allow"].split(", ")) == listed


def test_the_id_schema_admits_exactly_the_ids_the_service_takes() -> None:
    """Every character of the BMP and every 7th beyond it, and the special cases."""
    service = Service(None, Limits(max_id_length=8))  # type: ignore[arg-type]
    schema = document(Limits(max_id_length=8))
    admits = jsonschema_rs.validator_for({**schema, "$ref": "#/components/schemas/Id"}).is_valid
    codes = [*range(0x10000), *range(0x10000, sys.maxunicode + 1, 7)]
    ids = [chr(code) for code in codes if not 0xD800 <= code <= 0xDFFF]  # (none in JSON)
    ids += [".", "..", "...", "a/b", "a b", "12345678", "123456789", ""]
    assert [i for i in ids if admits(i) is not _takes(service, i)] == []


def _takes(service: Service, ident: str) -> bool:
    try:
        service.check_id("message", ident)
    except InvalidRequest:
        return False
    return True


def _parameter(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    (found,) = [p for p in document["paths"][path][method]["parameters"] if p["name"] == name]
    return dict(found)


@pytest.mark.parametrize("spelling", ["true", "false", "True", "False", "TRUE", "fAlSe"])
def test_match_hidden_is_true_or_false_in_any_letter_case(spelling: str) -> None:
    schema = _parameter(document(Limits()), "/v1.0/{account}/{queue}", "get", "match_hidden")
    assert re.fullmatch(schema["schema"]["pattern"], spelling)
    assert not re.fullmatch(schema["schema"]["pattern"], spelling + "y")


def test_served_document_uses_the_configured_limits(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    config = tmp_path / "burrow.toml"
    config.write_text("[limits]\nmax_limit = 70\ndefault_limit = 7\n")
    server = start_server("memory://", "--config", str(config))
    served = httpx.get(server.url + "/openapi.json").json()
    limit = _parameter(served, "/v1.0/{account}/{queue}", "get", "limit")
    assert (limit["schema"]["maximum"], limit["schema"]["default"]) == (70, 7)
    assert (
        "first 7" in _parameter(served, "/v1.0/{account}/{queue}", "delete", "limit")["description"]
    )
    assert "default" not in _parameter(served, "/v1.0", "delete", "limit")["schema"]  # all


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    keyfile = tmp_path / "keys.json"
    token = add_key(keyfile, "admin")
    config = tmp_path / "burrow.toml"
    config.write_text("[limits]\nmax_wait = 1\n")  # long polls stay short under fuzzing
    server = start_server("memory://", "--auth", f"keys:{keyfile}", "--config", str(config))
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    hooks = {"SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("schemathesis_hooks.py"))}
    result = subprocess.run(
        [st, "run", server.url + "/openapi.json", "--header", f"X-Auth-Token: {token}",
         "--checks", "all", "--max-examples", "25", "--generation-deterministic",
         "--request-timeout", "10", "--phases", "examples,fuzzing"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**os.environ, **hooks},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Network Error" not in result.stdout
