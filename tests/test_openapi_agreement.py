"""Where the OpenAPI document and the server could disagree, they agree: each case is
judged by the served document's own schema (with the validator schemathesis uses) and
sent to a live server, and the two verdicts are the same.
"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest

Document = dict[str, Any]


@pytest.fixture(scope="module")
def served(server_url: str) -> Document:
    document: Document = httpx.get(server_url + "/openapi.json").json()
    return document


def _admits(document: Document, component: str, value: Any) -> bool:
    root = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    return bool(jsonschema_rs.validator_for(root).is_valid(value))


def _query_schema(document: Document, path: str, name: str) -> dict[str, Any]:
    (found,) = [p for p in document["paths"][path]["put"]["parameters"] if p["name"] == name]
    schema: dict[str, Any] = found["schema"]
    return schema


IDS = [
    "a", "a b", "ü", "☃", "😀", "?#&+=%", "...", "a" * 255,
    "\u00ad", "\u200b", "\u202e",  # format characters (soft hyphen, zero width, bidi)
    "\u00a0", "\u2028",  # separators other than the space
    "\u0378", "\ue000", "\U000f0000",  # unassigned, private use
    "\x7f", "\t", "x/y", ".", "..", "a" * 256,
]  # fmt: skip


@pytest.mark.parametrize("ident", IDS, ids=ascii)
def test_an_id_is_taken_if_and_only_if_the_document_admits_it(
    server_url: str, served: Document, account: str, ident: str
) -> None:
    encoded = "".join(f"%{byte:02X}" for byte in ident.encode())  # `.` too, kept as a name
    response = httpx.put(f"{server_url}/v1.0/{account}/q/{encoded}", content=b"x")
    assert response.status_code in (201, 400), response.text
    assert (response.status_code == 201) is _admits(served, "Id", ident), response.text


ENTRIES = [
    {"hide": 330.0},  # an integer, as JSON Schema counts it
    {"ttl": 1e3},
    {"hide": -0.0},
    {"hide": 330.5},
    {"hide": None},  # not the default: leave the field out for that
    {"ttl": None},
    {"hide": True},
    {"hide": "330"},
    {"id": None},  # not "make an id": leave the field out for that
    {"id": "."},
    {"base64": None},
    {"base64": True, "body": "AAAA"},
    {"base64": True, "body": "QUI="},
    {"base64": True, "body": "QQ=="},
    {"base64": True, "body": ""},
    {"base64": True, "body": "AAAA="},  # excess padding, which Python's decoder lets by
    {"base64": True, "body": "QUI"},  # missing padding
    {"base64": True, "body": "Q"},
    {"base64": True, "body": "QU I="},
    {"base64": True, "body": "é"},
    {"base64": False, "body": "é"},
]


@pytest.mark.parametrize("entry", ENTRIES, ids=repr)
def test_a_batch_entry_is_taken_if_and_only_if_the_document_admits_it(
    server_url: str, served: Document, account: str, entry: dict[str, Any]
) -> None:
    batch = [{"body": "x", **entry}]
    response = httpx.put(f"{server_url}/v1.0/{account}/q", json=batch)
    assert response.status_code in (201, 400), response.text
    assert (response.status_code == 201) is _admits(served, "Batch", batch), response.text


def test_a_whole_number_written_with_a_fraction_is_that_number(
    server_url: str, account: str
) -> None:
    batch = [{"id": "m", "body": "x", "ttl": 1000.0, "hide": 330.0}]
    assert httpx.put(f"{server_url}/v1.0/{account}/q", json=batch).status_code == 201
    stored = httpx.get(f"{server_url}/v1.0/{account}/q/m").json()
    assert 990 <= stored["ttl"] <= 1000 and 320 <= stored["hide"] <= 330, stored


def test_a_put_with_no_body_is_an_empty_message_and_the_body_is_optional(
    server_url: str, served: Document, account: str
) -> None:
    one = served["paths"]["/v1.0/{account}/{queue}/{message}"]["put"]["requestBody"]
    batch = served["paths"]["/v1.0/{account}/{queue}"]["put"]["requestBody"]
    assert (one["required"], batch["required"]) == (False, True)
    assert httpx.put(f"{server_url}/v1.0/{account}/q/m").status_code == 201
    assert httpx.get(f"{server_url}/v1.0/{account}/q/m", params={"detail": "body"}).content == b""
    assert httpx.put(f"{server_url}/v1.0/{account}/q").status_code == 400  # no JSON list


@pytest.mark.parametrize("path", ["/v1.0/{account}/{queue}", "/v1.0/{account}/{queue}/{message}"])
def test_a_quota_parameter_is_taken_up_to_the_documented_maximum(
    server_url: str, served: Document, account: str, path: str
) -> None:
    largest = _query_schema(served, path, "max_queue_messages")["maximum"]
    url = server_url + path.format(account=account, queue="q", message="m")
    body = b'[{"body": "x"}]' if path.endswith("{queue}") else b"x"
    for number, status in ((largest, 201), (largest + 1, 400)):
        response = httpx.put(url, params={"max_queue_messages": number}, content=body)
        assert response.status_code == status, (number, response.text)
