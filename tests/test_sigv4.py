"""`sigv4.parse` and `sigv4.verify` on requests botocore signs as the SDKs do, and on
malformed ones: those raise SigV4Malformed and nothing else."""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import replace
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from burrow import sigv4
from burrow.sigv4 import SigV4Malformed, SigV4Refused

ACCESS_KEY_ID = "0123456789ab"
SECRET = "a-secret-access-key"
ENDPOINT = "http://127.0.0.1:9324"
QUEUE_URL = f"{ENDPOINT}/acct/jobs"
JSON_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "AmazonSQS.SendMessage",
    "User-Agent": "Boto3/1.44.8",  # (which botocore does not sign)
}
MINUTE = 60.0


class Wire(NamedTuple):
    """A request as an ASGI server hands it over: what `sigv4.parse` takes."""

    method: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


def on_the_wire(request: AWSRequest) -> Wire:
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    headers = [(b"host", url.netloc.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in prepared.headers.items()]
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    return Wire(prepared.method, url.path.encode(), url.query.encode(), headers, body)


def signed(
    body: bytes = b'{"QueueUrl": "%s", "MessageBody": "hi"}' % QUEUE_URL.encode(),
    headers: dict[str, str] | None = None,
    secret: str = SECRET,
    access_key_id: str = ACCESS_KEY_ID,
    service: str = "sqs",
) -> Wire:
    """A POST signed in the Authorization header, as botocore signs an SQS call."""
    request = AWSRequest("POST", ENDPOINT + "/", headers=headers or JSON_HEADERS, data=body)
    SigV4Auth(Credentials(access_key_id, secret), service, "eu-west-3").add_auth(request)
    return on_the_wire(request)


def presigned(expires: int = 60, params: dict[str, str] | None = None) -> Wire:
    """A GET presigned in the query (the query protocol's parameters)."""
    params = params or {"Action": "ReceiveMessage", "QueueUrl": QUEUE_URL}
    request = AWSRequest("GET", QUEUE_URL, params=params)
    SigV4QueryAuth(Credentials(ACCESS_KEY_ID, SECRET), "sqs", "us-east-1", expires).add_auth(
        request
    )
    return on_the_wire(request)


def parsed(wire: Wire) -> sigv4.SigV4Request:
    found = sigv4.parse(*wire)
    assert found is not None
    return found


def refused(request: sigv4.SigV4Request, now: float, secret: str = SECRET) -> SigV4Refused:
    with pytest.raises(SigV4Refused) as raised:
        sigv4.verify(request, secret, now)
    return raised.value


def test_a_request_signed_in_the_header_verifies() -> None:
    request = parsed(signed())
    assert (request.access_key_id, request.region, request.service) == (
        ACCESS_KEY_ID,
        "eu-west-3",
        "sqs",
    )
    assert request.expires is None
    assert "x-amz-target" in request.signed_headers
    assert "user-agent" not in request.signed_headers
    sigv4.verify(request, SECRET, time.time())
    wrong = refused(request, time.time(), "another secret")
    assert wrong.sqs_code == "SignatureDoesNotMatch"
    assert wrong.status == 401
    assert wrong.message.startswith("The request signature we calculated does not match")


def test_the_signature_covers_the_body_action_and_queue() -> None:
    wire = signed()
    for changed in (
        wire._replace(body=wire.body.replace(b"hi", b"ho")),
        wire._replace(
            headers=[
                (k, b"AmazonSQS.PurgeQueue" if k == b"x-amz-target" else v) for k, v in wire.headers
            ]
        ),
        wire._replace(raw_path=b"/acct/other"),
        wire._replace(query=b"Action=PurgeQueue"),
        wire._replace(method="PUT"),
    ):
        assert refused(parsed(changed), time.time()).sqs_code == "SignatureDoesNotMatch"


def test_fifteen_minutes_of_skew_either_way_and_no_more() -> None:
    request = parsed(signed())
    now = time.time()
    for skew in (-14 * MINUTE, 14 * MINUTE):
        sigv4.verify(request, SECRET, now + skew)
    late = refused(request, now + 16 * MINUTE)
    assert late.sqs_code == "SignatureDoesNotMatch"
    assert late.message.startswith(f"Signature expired: {request.timestamp} is now earlier than")
    assert late.message.endswith(" - 15 min.)")
    early = refused(request, now - 16 * MINUTE)
    assert early.message.startswith(f"Signature not yet current: {request.timestamp} is still")
    assert early.message.endswith(" + 15 min.)")


def test_the_headers_the_client_signed_are_those_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another SDK may sign headers botocore leaves out (User-Agent): they are checked as
    signed, not as botocore would have chosen."""
    with monkeypatch.context() as signing_as_another_sdk:
        signing_as_another_sdk.setattr(botocore.auth, "SIGNED_HEADERS_BLACKLIST", [])
        wire = signed()
    request = parsed(wire)
    assert "user-agent" in request.signed_headers
    sigv4.verify(request, SECRET, time.time())
    other_agent = [(k, b"curl" if k == b"user-agent" else v) for k, v in wire.headers]
    assert refused(parsed(wire._replace(headers=other_agent)), time.time()).sqs_code == (
        "SignatureDoesNotMatch"
    )


def test_the_date_header_may_stand_for_x_amz_date() -> None:
    query_protocol = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    wire = signed(b"Action=ListQueues&Version=2012-11-05", query_protocol | {"Date": "now"})
    assert not any(name == b"x-amz-date" for name, _ in wire.headers)
    request = parsed(wire)
    sigv4.verify(request, SECRET, time.time())
    assert refused(request, time.time() + 16 * MINUTE).sqs_code == "SignatureDoesNotMatch"


def test_the_credential_date_must_be_the_signing_date() -> None:
    request = parsed(signed())
    other_day = replace(request, date="20200101")
    message = refused(other_day, time.time()).message
    assert message.startswith("Date in Credential scope does not match YYYYMMDD")


def test_the_payload_hash_sent_must_be_the_bodys() -> None:
    body = b'{"QueueUrl": "q"}'
    right = hashlib.sha256(body).hexdigest()
    sigv4.verify(
        parsed(signed(body, JSON_HEADERS | {"X-Amz-Content-SHA256": right})), SECRET, time.time()
    )
    wrong = parsed(signed(body, JSON_HEADERS | {"X-Amz-Content-SHA256": "0" * 64}))
    mismatch = refused(wrong, time.time())
    assert mismatch.message == (
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    )
    # UNSIGNED-PAYLOAD, signed: the client chose to leave the body out of the signature.
    unsigned = parsed(signed(body, JSON_HEADERS | {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}))
    sigv4.verify(replace(unsigned, body=b"another body"), SECRET, time.time())


def test_a_presigned_request_verifies_until_it_expires() -> None:
    request = parsed(presigned(expires=60))
    assert request.expires == 60
    assert ("Action", "ReceiveMessage") in request.query
    assert all(name != "X-Amz-Signature" for name, _ in request.query)
    now = time.time()
    sigv4.verify(request, SECRET, now)
    sigv4.verify(request, SECRET, now + 55)
    expired = refused(request, now + 65)
    assert (expired.sqs_code, expired.message) == ("RequestExpired", "Request has expired.")
    assert refused(request, now - 16 * MINUTE).sqs_code == "SignatureDoesNotMatch"
    # Its lifetime is signed, and so is the payload (an empty one): no body can be added.
    longer = tuple((k, "3600" if k == "X-Amz-Expires" else v) for k, v in request.query)
    assert refused(replace(request, query=longer), now).sqs_code == "SignatureDoesNotMatch"
    assert refused(replace(request, body=b"Action=PurgeQueue"), now).sqs_code == (
        "SignatureDoesNotMatch"
    )


def test_a_presigned_request_lives_an_hour_by_default_and_a_week_at_most() -> None:
    sigv4.verify(parsed(presigned(expires=7 * 24 * 3600)), SECRET, time.time() + 6 * 24 * 3600)
    wire = presigned(expires=7 * 24 * 3600 + 1)
    with pytest.raises(SigV4Malformed, match="X-Amz-Expires must be seconds from 1 to 604800"):
        sigv4.parse(*wire)


def test_no_signature_is_none() -> None:
    assert sigv4.parse("GET", b"/", b"Action=ListQueues", [(b"host", b"h")], b"") is None
    assert sigv4.parse("POST", b"/", b"", [(b"x-auth-token", b"t")], b"{}") is None


def header_form(authorization: bytes, *extra: tuple[bytes, bytes]) -> Wire:
    headers = [(b"host", b"h"), (b"x-amz-date", b"20150830T123600Z"), *extra]
    return Wire("POST", b"/", b"", [*headers, (b"authorization", authorization)], b"")


GOOD = b"Credential=AKID/20150830/us-east-1/sqs/aws4_request"
GOOD_HEADERS = b"SignedHeaders=host;x-amz-date"
GOOD_AUTH = b"AWS4-HMAC-SHA256 " + b", ".join((GOOD, GOOD_HEADERS, b"Signature=abc"))
PRESIGNED = {
    "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
    "X-Amz-Credential": "AKID/20150830/us-east-1/sqs/aws4_request",
    "X-Amz-Date": "20150830T123600Z",
    "X-Amz-Expires": "60",
    "X-Amz-SignedHeaders": "host",
    "X-Amz-Signature": "abc",
}


def query_form(**changes: str | None) -> Wire:
    params = {k: v for k, v in (PRESIGNED | changes).items() if v is not None}
    query = "&".join(f"{k}={v}" for k, v in params.items()).encode("utf-8")
    return Wire("GET", b"/", query, [(b"host", b"h")], b"")


def without(wire: Wire, name: bytes) -> Wire:
    return wire._replace(headers=[(k, v) for k, v in wire.headers if k != name])


MALFORMED: dict[str, tuple[Wire, str]] = {
    "another scheme": (header_form(b"Bearer abc.def"), "Unsupported authorization type 'Bearer'"),
    "another algorithm": (
        header_form(GOOD_AUTH.replace(b"SHA256", b"SHA512")),
        "Unsupported authorization type 'AWS4-HMAC-SHA512'",
    ),
    "no SignedHeaders": (
        header_form(b"AWS4-HMAC-SHA256 " + GOOD + b", Signature=abc"),
        "Authorization header requires 'SignedHeaders' parameter.",
    ),
    "nothing but the algorithm": (
        header_form(b"AWS4-HMAC-SHA256"),
        "is malformed",
    ),
    "no Credential, no Signature": (
        header_form(b"AWS4-HMAC-SHA256 " + GOOD_HEADERS + b", Credential=, Signature="),
        "requires 'Credential' parameter. Authorization header requires 'Signature' parameter.",
    ),
    "a part twice": (header_form(GOOD_AUTH + b", Signature=abd"), "'Signature=abd' is malformed"),
    "a part without =": (header_form(GOOD_AUTH + b", oops"), "'oops' is malformed"),
    "non-ASCII": (header_form(GOOD_AUTH.replace(b"AKID", "ÄKID".encode())), "not ASCII"),
    "a short credential": (
        header_form(GOOD_AUTH.replace(b"/sqs/", b"/")),
        "Credential must read ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request",
    ),
    "another terminator": (
        header_form(GOOD_AUTH.replace(b"aws4_request", b"aws5_request")),
        "valid terminator",
    ),
    "a bad scope date": (header_form(GOOD_AUTH.replace(b"20150830", b"2015083x")), "YYYYMMDD"),
    "a bad region": (header_form(GOOD_AUTH.replace(b"us-east-1", b"us east")), "region"),
    "a control character in the key id": (
        header_form(GOOD_AUTH.replace(b"AKID", b"AK\x01D")),
        "printable",
    ),
    "host unsigned": (
        header_form(GOOD_AUTH.replace(b"host;", b"")),
        "'Host' must be a signed header",
    ),
    "upper-case signed headers": (header_form(GOOD_AUTH.replace(b"host;", b"Host;")), "lower-case"),
    "an empty signed header": (header_form(GOOD_AUTH.replace(b"host;", b"host;;")), "lower-case"),
    "an x-amz header unsigned": (
        header_form(GOOD_AUTH, (b"x-amz-target", b"AmazonSQS.PurgeQueue")),
        "Header 'x-amz-target' is present but not signed",
    ),
    "two Authorization headers": (
        header_form(GOOD_AUTH, (b"authorization", GOOD_AUTH)),
        "Only one Authorization header",
    ),
    "no date": (
        without(header_form(GOOD_AUTH), b"x-amz-date"),
        "requires an X-Amz-Date or a Date header",
    ),
    "a bad HTTP date": (
        without(header_form(GOOD_AUTH, (b"date", b"yesterday")), b"x-amz-date"),
        "not an HTTP date",
    ),
    "a short X-Amz-Date": (
        header_form(GOOD_AUTH, (b"x-amz-date", b"20150830T1236Z")),
        "ISO 8601 basic format",
    ),
    "month 13": (header_form(GOOD_AUTH, (b"x-amz-date", b"20151330T123600Z")), "basic format"),
    "a non-UTF-8 path": (header_form(GOOD_AUTH)._replace(raw_path=b"/\xff"), "not UTF-8"),
    "a # in the path": (header_form(GOOD_AUTH)._replace(raw_path=b"/a#b"), "hold no #"),
    "a non-UTF-8 query": (header_form(GOOD_AUTH)._replace(query=b"a=%ff"), "not UTF-8"),
    "raw non-UTF-8 in the query": (header_form(GOOD_AUTH)._replace(query=b"a=\xff"), "not UTF-8"),
    "a non-UTF-8 signed header": (
        header_form(GOOD_AUTH.replace(b"host;", b"host;my;"), (b"my", b"\xff")),
        "a signed header is not UTF-8",
    ),
    "both forms": (
        header_form(GOOD_AUTH)._replace(query=query_form().query),
        "Only one authentication mechanism",
    ),
    "presigned without a signature": (query_form(**{"X-Amz-Signature": None}), "X-Amz-Signature"),
    "presigned with another algorithm": (
        query_form(**{"X-Amz-Algorithm": "AWS4-HMAC-SHA1"}),
        "X-Amz-Algorithm must be AWS4-HMAC-SHA256",
    ),
    "presigned for no time": (query_form(**{"X-Amz-Expires": "0"}), "X-Amz-Expires"),
    "presigned in words": (query_form(**{"X-Amz-Expires": "soon"}), "X-Amz-Expires"),
    "presigned in Arabic digits": (
        query_form(**{"X-Amz-Expires": "\u0663\u0660"}),
        "X-Amz-Expires",
    ),
    "presigned twice": (
        query_form()._replace(query=query_form().query + b"&X-Amz-Date=20150830T123600Z"),
        "Only one X-Amz-Date",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_signature_is_an_incomplete_signature(case: str) -> None:
    wire, said = MALFORMED[case]
    with pytest.raises(SigV4Malformed) as raised:
        sigv4.parse(*wire)
    assert said in raised.value.message
    assert (raised.value.sqs_code, raised.value.status) == ("IncompleteSignature", 400)


def test_random_bytes_raise_nothing_but_sigv4_malformed() -> None:
    """Each part of a signature replaced by random bytes: parse and verify answer with a
    SigV4Request, SigV4Malformed or SigV4Refused, and never with any other exception."""
    chooser = random.Random(14)
    alphabet = b"AWS4-HMAC-SHA256 Credential=/,;=aws4_request\x00\xff\xe1\x88\xb4 %20180101T000000Z"
    base = signed()
    for _ in range(2000):
        junk = bytes(chooser.choice(alphabet) for _ in range(chooser.randrange(0, 60)))
        where = chooser.randrange(4)
        wire: Any = base
        if where == 0:
            wire = base._replace(
                headers=[(k, junk if k == b"authorization" else v) for k, v in base.headers]
            )
        elif where == 1:
            wire = base._replace(
                headers=[(k, junk if k == b"x-amz-date" else v) for k, v in base.headers]
            )
        elif where == 2:
            wire = base._replace(query=b"X-Amz-Credential=" + junk)
        else:
            wire = base._replace(raw_path=b"/" + junk)
        try:
            found = sigv4.parse(*wire)
            if found is not None:
                sigv4.verify(found, SECRET, time.time())
        except (SigV4Malformed, SigV4Refused):
            pass
