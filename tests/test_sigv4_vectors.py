"""`sigv4.parse` and `sigv4.verify` on AWS's published SigV4 test vectors
(tests/data/aws4_testsuite, from botocore's repository)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from burrow import sigv4
from burrow.sigv4 import SigV4Malformed, SigV4Refused

SUITE = Path(__file__).parent / "data" / "aws4_testsuite"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SIGNED_AT = datetime(2015, 8, 30, 12, 36, tzinfo=UTC).timestamp()
CASES = sorted(path.parent.relative_to(SUITE).as_posix() for path in SUITE.rglob("*.req"))


class RawRequest(NamedTuple):
    method: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


def vector_file(case: str, kind: str) -> str:
    name = case.rpartition("/")[2]
    return (SUITE / case / f"{name}.{kind}").read_text(encoding="utf-8").replace("\r", "")


def read_request(case: str) -> RawRequest:
    """A vector's request with its Authorization header, as an ASGI server hands one
    over (folded header lines joined to the header they continue)."""
    text = vector_file(case, "req")
    head, _, body = text.partition("\n\n")
    request_line, *lines = head.split("\n")
    method, _, rest = request_line.partition(" ")
    target = rest.rpartition(" ")[0]  # (a path may hold a space: normalize-path/get-space)
    path, _, query = target.partition("?")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines:
        if line[:1].isspace():
            name_, value = headers.pop()
            headers.append((name_, value + b"\n" + line.encode()))
        else:
            field, _, value_text = line.partition(":")
            headers.append((field.lower().encode(), value_text.strip().encode()))
    # A session token the canonical request has and the request omits: the signer adds
    # it from the credentials, as botocore's run of this suite does.
    token = re.search(r"^x-amz-security-token:(.*)$", vector_file(case, "creq"), re.MULTILINE)
    if token and all(name != b"x-amz-security-token" for name, _ in headers):
        headers.append((b"x-amz-security-token", token[1].encode()))
    headers.append((b"authorization", vector_file(case, "authz").encode()))
    return RawRequest(method, path.encode(), query.encode(), headers, body.encode())


def parsed(case: str) -> sigv4.SigV4Request:
    found = sigv4.parse(*read_request(case))
    assert found is not None
    return found


def test_every_vector_is_run() -> None:
    assert len(CASES) == 34
    assert "get-utf8" in CASES and "get-vanilla-query-order-key" in CASES


@pytest.mark.parametrize("case", CASES)
def test_the_canonical_request_is_the_vectors(case: str) -> None:
    assert sigv4.canonical_request(parsed(case)) == vector_file(case, "creq")


@pytest.mark.parametrize("case", CASES)
def test_each_vector_verifies_and_a_wrong_secret_does_not(case: str) -> None:
    request = parsed(case)
    assert (request.access_key_id, request.region, request.service) == (
        "AKIDEXAMPLE",
        "us-east-1",
        "service",
    )
    sigv4.verify(request, SECRET, SIGNED_AT)
    with pytest.raises(SigV4Refused) as refused:
        sigv4.verify(request, SECRET[:-1], SIGNED_AT)
    assert refused.value.sqs_code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("case", CASES)
def test_a_vector_changed_in_any_signed_part_fails(case: str) -> None:
    request = parsed(case)
    changes = {
        "method": "PUT",
        "raw_path": request.raw_path + "x",
        "query": (*request.query, ("extra", "1")),
        "headers": (*request.headers, ("host", "elsewhere")),
        "body": request.body + b"x",
        "region": "eu-west-1",
    }
    for field, value in changes.items():
        with pytest.raises(SigV4Refused):
            sigv4.verify(replace(request, **{field: value}), SECRET, SIGNED_AT)  # type: ignore[arg-type]


def test_a_security_token_added_after_signing_is_refused() -> None:
    """The suite's post-sts-header-after: an X-Amz-* header left unsigned, which Burrow
    refuses (X-Amz-Target names the action: one unsigned would let a replay change it)."""
    method, path, query, headers, body = read_request("post-sts-token/post-sts-header-after")
    token = (b"x-amz-security-token", b"AQoDYXdzEPT//////////wEXAMPLE")
    with pytest.raises(SigV4Malformed, match="'x-amz-security-token' is present but not signed"):
        sigv4.parse(method, path, query, [*headers, token], body)
