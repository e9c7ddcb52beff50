"""The OpenAPI document: complete, and true of a live server under schemathesis."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from burrow.auth import OpenAccess
from burrow.config import Limits
from burrow.frontends.burrow_v1 import BurrowV1
from burrow.frontends.openapi import document
from burrow.service import Service
from tests.conftest import ServerFactory
from tests.test_auth import add_key

DEPTH_TO_PATH = {
    0: "/v1.0",
    1: "/v1.0/{account}",
    2: "/v1.0/{account}/{queue}",
    3: "/v1.0/{account}/{queue}/{message}",
}


def test_every_route_and_parameter_is_documented() -> None:
    frontend = BurrowV1(Service(None, Limits()), OpenAccess())  # type: ignore[arg-type]
    paths = document(Limits())["paths"]
    for (depth, method), (_, accepted) in frontend.routes.items():
        operation = paths[DEPTH_TO_PATH[depth]][method.lower()]
        documented = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        assert documented == set(accepted), (depth, method)
    assert {"/", "/health", "/openapi.json"} <= paths.keys()


def test_served_document_uses_the_configured_limits(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    config = tmp_path / "burrow.toml"
    config.write_text("[limits]\nmax_limit = 7\n")
    server = start_server("memory://", "--config", str(config))
    served = httpx.get(server.url + "/openapi.json").json()
    params = served["paths"]["/v1.0/{account}/{queue}"]["get"]["parameters"]
    (limit,) = [p for p in params if p["name"] == "limit"]
    assert limit["schema"]["maximum"] == 7


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
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,"
    checks += "response_schema_conformance"
    result = subprocess.run(
        [st, "run", server.url + "/openapi.json", "--header", f"X-Auth-Token: {token}",
         "--checks", checks, "--max-examples", "25", "--generation-deterministic",
         "--request-timeout", "10", "--phases", "examples,fuzzing"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Network Error" not in result.stdout
