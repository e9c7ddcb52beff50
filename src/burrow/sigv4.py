"""AWS Signature Version 4: reading what a request presents, and checking it.

`parse` reads both forms a client signs in: the `Authorization: AWS4-HMAC-SHA256 …`
header (with `X-Amz-Date`, or `Date`), and the presigned query (`X-Amz-Algorithm`,
`X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`,
`X-Amz-Signature`). `verify` recomputes the signature with botocore's own signer, so
that Burrow canonicalizes a request exactly as the SDKs do, and checks the payload's
hash and the time. The secret is the caller's business (`keys.sqs_secret`).

The errors carry the SQS error code the frontend answers with (`sqs_code`):

    InvalidRequest
    └── SigV4Malformed      IncompleteSignature: the SigV4 parts cannot be read
    Unauthorized
    └── SigV4Refused        InvalidClientTokenId, SignatureDoesNotMatch, RequestExpired
    Forbidden
    └── AccessDenied        AccessDenied: a valid key without the right to this call
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

from botocore.auth import SIGV4_TIMESTAMP, UNSIGNED_PAYLOAD, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from burrow.errors import Forbidden, InvalidRequest, Unauthorized

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
MAX_SKEW = timedelta(minutes=15)  # either way, as AWS allows
MAX_EXPIRES = 7 * 24 * 3600  # a presigned request's longest life, as AWS allows

INVALID_CLIENT_TOKEN_ID = "InvalidClientTokenId"
SIGNATURE_DOES_NOT_MATCH = "SignatureDoesNotMatch"
REQUEST_EXPIRED = "RequestExpired"
# AWS's own wording, which SDK users search for.
UNKNOWN_KEY = "The security token included in the request is invalid."
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service "
    "documentation for details."
)


class SigV4Malformed(InvalidRequest):
    """The request's SigV4 parts cannot be read: a signature is missing a part, or has
    one that is not what SigV4 allows."""

    sqs_code = "IncompleteSignature"


class SigV4Refused(Unauthorized):
    """SigV4 credentials refused: an unknown access key id, a signature that does not
    match, or one out of its time."""

    def __init__(self, sqs_code: str, message: str) -> None:
        super().__init__(message)
        self.sqs_code = sqs_code


class AccessDenied(Forbidden):
    """A valid SigV4 key without the right to this call (another account, a reader's
    write)."""

    sqs_code = "AccessDenied"


@dataclass(frozen=True, slots=True)
class SigV4Request:
    """What a SigV4-signed request presents, and the parts of it the signature covers."""

    access_key_id: str
    date: str  # the credential scope's date, YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]  # lower-case, as the client listed them
    signature: str
    timestamp: str  # X-Amz-Date (or Date), in the basic format: 20150830T123600Z
    method: str
    raw_path: str  # as sent, percent-encoding and all
    query: tuple[tuple[str, str], ...]  # decoded, without X-Amz-Signature
    headers: tuple[tuple[str, str], ...]  # the signed headers' values, each as sent
    body: bytes
    content_sha256: str | None  # the x-amz-content-sha256 header, if sent
    expires: int | None  # seconds a presigned request lives; None: the header form


Headers = list[tuple[bytes, bytes]]
AUTHORIZATION = b"authorization"
PRESIGNED_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
TIMESTAMP = re.compile(r"\d{8}T\d{6}Z")
HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
SCOPE_PART = re.compile(r"[A-Za-z0-9._-]{1,64}")


def parse(
    method: str, raw_path: bytes, query: bytes, headers: Headers, body: bytes
) -> SigV4Request | None:
    """The SigV4 signature a request carries, in either form; None when it carries none.

    Raises SigV4Malformed when it carries one that cannot be read, or both forms.
    """
    authorization = [value for name, value in headers if name.lower() == AUTHORIZATION]
    params = _query(query)
    presigned = any(name in PRESIGNED_PARAMS for name, _ in params)
    if not authorization and not presigned:
        return None
    if authorization and presigned:
        raise SigV4Malformed("Only one authentication mechanism allowed: the header or the query")
    sent = [(name.lower(), value) for name, value in headers]
    if presigned:
        found = _presigned(params)
    else:
        found = _authorization(authorization, sent)
    credential, signed, signature, timestamp, expires = found
    access_key_id, date, region, service = credential
    return SigV4Request(
        access_key_id=access_key_id,
        date=date,
        region=region,
        service=service,
        signed_headers=signed,
        signature=signature,
        timestamp=timestamp,
        method=method,
        raw_path=_path(raw_path),
        query=tuple(pair for pair in params if pair[0] != "X-Amz-Signature"),
        headers=_signed_values(signed, sent),
        body=body,
        content_sha256=_text(_last(sent, b"x-amz-content-sha256")),
        expires=expires,
    )


Parts = tuple[tuple[str, str, str, str], tuple[str, ...], str, str, int | None]


def _authorization(values: list[bytes], sent: Headers) -> Parts:
    """The parts of the `Authorization` header form."""
    if len(values) != 1:
        raise SigV4Malformed("Only one Authorization header allowed")
    text = _ascii(values[0], "the Authorization header")
    algorithm, _, rest = text.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SigV4Malformed(f"Unsupported authorization type {algorithm[:40]!r}: use {ALGORITHM}")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, equals, value = item.strip().partition("=")
        if not equals or name in fields:
            raise SigV4Malformed(f"Authorization header part {item.strip()[:40]!r} is malformed")
        fields[name] = value
    missing = [f for f in ("Credential", "SignedHeaders", "Signature") if not fields.get(f)]
    if missing:
        wanted = " ".join(f"Authorization header requires '{f}' parameter." for f in missing)
        raise SigV4Malformed(wanted)
    stamp = _last(sent, b"x-amz-date")
    if stamp is not None:
        timestamp = _timestamp(_ascii(stamp, "X-Amz-Date"))
    else:
        timestamp = _from_http_date(_last(sent, b"date"))
    signed = _signed_header_names(fields["SignedHeaders"])
    return _credential(fields["Credential"]), signed, fields["Signature"], timestamp, None


def _presigned(params: list[tuple[str, str]]) -> Parts:
    """The parts of the presigned query form."""
    found: dict[str, str] = {}
    for name, value in params:
        if name in PRESIGNED_PARAMS:
            if name in found:
                raise SigV4Malformed(f"Only one {name} allowed")
            found[name] = value
    missing = [name for name in PRESIGNED_PARAMS if not found.get(name)]
    if missing:
        raise SigV4Malformed(f"A presigned request requires {', '.join(missing)}")
    if found["X-Amz-Algorithm"] != ALGORITHM:
        raise SigV4Malformed(f"X-Amz-Algorithm must be {ALGORITHM}")
    expires = found["X-Amz-Expires"]
    if not (expires.isascii() and expires.isdigit() and 0 < int(expires) <= MAX_EXPIRES):
        raise SigV4Malformed(f"X-Amz-Expires must be seconds from 1 to {MAX_EXPIRES}")
    return (
        _credential(found["X-Amz-Credential"]),
        _signed_header_names(found["X-Amz-SignedHeaders"]),
        found["X-Amz-Signature"],
        _timestamp(found["X-Amz-Date"]),
        int(expires),
    )


def _credential(text: str) -> tuple[str, str, str, str]:
    """Access key id, date, region and service of `ID/YYYYMMDD/REGION/SERVICE/aws4_request`."""
    parts = text.split("/")
    if len(parts) != 5:
        raise SigV4Malformed("Credential must read ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request")
    access_key_id, date, region, service, terminator = parts
    if not (access_key_id.isascii() and access_key_id.isprintable() and access_key_id):
        raise SigV4Malformed("Credential's access key id must be printable ASCII")
    if len(access_key_id) > 128:
        raise SigV4Malformed("Credential's access key id is longer than 128 characters")
    if not (len(date) == 8 and date.isascii() and date.isdigit()):
        raise SigV4Malformed("Credential's date must read YYYYMMDD")
    if not (SCOPE_PART.fullmatch(region) and SCOPE_PART.fullmatch(service)):
        raise SigV4Malformed("Credential's region and service must be letters, digits, . _ -")
    if terminator != TERMINATOR:
        raise SigV4Malformed(f"Credential should be scoped with a valid terminator: {TERMINATOR!r}")
    return access_key_id, date, region, service


def _signed_header_names(text: str) -> tuple[str, ...]:
    names = tuple(text.split(";"))
    if not all(HEADER_NAME.fullmatch(name) for name in names):
        raise SigV4Malformed("SignedHeaders must be lower-case header names separated by ;")
    if "host" not in names:
        raise SigV4Malformed("'Host' must be a signed header")
    return names


def _signed_values(signed: tuple[str, ...], sent: Headers) -> tuple[tuple[str, str], ...]:
    """The values of the signed headers, every occurrence, in the order sent.

    Any x-amz-* header the request carries must be signed: X-Amz-Target names the
    action, so one left out would let a replay turn a signed receive into a purge.
    """
    names = frozenset(signed)
    for name, _ in sent:
        if name.startswith(b"x-amz-") and name.decode("latin-1") not in names:
            raise SigV4Malformed(f"Header {name.decode('latin-1')!r} is present but not signed")
    wanted = {name.encode() for name in names}
    return tuple(
        (name.decode(), _utf8(value, "a signed header")) for name, value in sent if name in wanted
    )


def _query(query: bytes) -> list[tuple[str, str]]:
    """The query's (name, value) pairs, decoded as the SDKs encode them."""
    try:
        return parse_qsl(query.decode(), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as error:
        raise SigV4Malformed("the query string is not UTF-8") from error


def _path(raw_path: bytes) -> str:
    path = _utf8(raw_path, "the request path")
    if not path.startswith("/") or "#" in path:
        raise SigV4Malformed("the request path must begin with / and hold no #")
    return path


def _timestamp(text: str) -> str:
    """`text` if it is a real time in the basic format (20150830T123600Z)."""
    try:
        if TIMESTAMP.fullmatch(text):
            _moment(text)
            return text
    except ValueError:
        pass
    raise SigV4Malformed("X-Amz-Date must be in the ISO 8601 basic format, 20150830T123600Z")


def _moment(stamp: str) -> datetime:
    """The time of a basic-format timestamp (a tenth of `strptime`'s cost)."""
    numbers = int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8])
    return datetime(*numbers, int(stamp[9:11]), int(stamp[11:13]), int(stamp[13:15]), tzinfo=UTC)


def _from_http_date(value: bytes | None) -> str:
    """An HTTP `Date` header's time, in the basic format."""
    if value is None:
        raise SigV4Malformed("A signed request requires an X-Amz-Date or a Date header")
    try:
        when = parsedate_to_datetime(_ascii(value, "the Date header"))
    except (TypeError, ValueError) as error:
        raise SigV4Malformed("the Date header is not an HTTP date") from error
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime(SIGV4_TIMESTAMP)


def _last(headers: Headers, name: bytes) -> bytes | None:
    values = [value for key, value in headers if key == name]
    return values[-1] if values else None


def _ascii(value: bytes, what: str) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError as error:
        raise SigV4Malformed(f"{what} is not ASCII") from error


def _utf8(value: bytes, what: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as error:
        raise SigV4Malformed(f"{what} is not UTF-8") from error


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


# Verifying ------------------------------------------------------------------------------


def verify(request: SigV4Request, secret: str, now: float) -> None:
    """Check that `request` was signed with `secret`, in its time (`now`, epoch seconds),
    over the payload it carries; raises SigV4Refused if not."""
    _check_time(request, datetime.fromtimestamp(now, UTC))
    sent = request.content_sha256
    if sent is not None and sent != UNSIGNED_PAYLOAD:
        actual = hashlib.sha256(request.body).hexdigest()
        if not hmac.compare_digest(sent.encode(), actual.encode()):
            raise SigV4Refused(
                SIGNATURE_DOES_NOT_MATCH,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
    if not hmac.compare_digest(signature(request, secret).encode(), request.signature.encode()):
        raise SigV4Refused(SIGNATURE_DOES_NOT_MATCH, MISMATCH)


def _check_time(request: SigV4Request, now: datetime) -> None:
    stamp = request.timestamp
    if request.date != stamp[:8]:
        raise SigV4Refused(
            SIGNATURE_DOES_NOT_MATCH,
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
            f"date from HTTP: {request.date!r} != {stamp[:8]!r}, from {stamp!r}.",
        )
    signed_at = _moment(stamp)
    if signed_at > now + MAX_SKEW:
        raise SigV4Refused(
            SIGNATURE_DOES_NOT_MATCH,
            f"Signature not yet current: {stamp} is still later than "
            f"{_basic(now + MAX_SKEW)} ({_basic(now)} + 15 min.)",
        )
    if request.expires is not None:
        if now > signed_at + timedelta(seconds=request.expires):
            raise SigV4Refused(REQUEST_EXPIRED, "Request has expired.")
    elif signed_at < now - MAX_SKEW:
        raise SigV4Refused(
            SIGNATURE_DOES_NOT_MATCH,
            f"Signature expired: {stamp} is now earlier than "
            f"{_basic(now - MAX_SKEW)} ({_basic(now)} - 15 min.)",
        )


def _basic(when: datetime) -> str:
    return when.strftime(SIGV4_TIMESTAMP)


class _AsSigned(SigV4Auth):  # type: ignore[misc]  # (botocore is untyped)
    """botocore's SigV4 signer over exactly the headers the client signed: on its own it
    leaves some out (User-Agent, …) and adds Host. The presigned form's canonical
    request is the same; SigV4QueryAuth differs only in where it puts the result."""

    def headers_to_sign(self, request: AWSRequest) -> Any:
        return request.headers


def _signer(request: SigV4Request, secret: str) -> tuple[_AsSigned, AWSRequest]:
    credentials = ReadOnlyCredentials(request.access_key_id, secret, None)
    signer = _AsSigned(credentials, request.service, request.region)
    # http: botocore hashes the payload itself (over https it may leave it unsigned).
    message = AWSRequest(
        method=request.method,
        url=f"http://sigv4{request.raw_path}",
        data=request.body,
        params=list(request.query),
    )
    for name, value in request.headers:
        message.headers[name] = value  # (adds one more value; does not replace)
    message.context["timestamp"] = request.timestamp
    return signer, message


def canonical_request(request: SigV4Request) -> str:
    """The canonical request, as botocore makes it (the secret plays no part)."""
    signer, message = _signer(request, "")
    return str(signer.canonical_request(message))


def signature(request: SigV4Request, secret: str) -> str:
    """The signature `request` should carry if signed with `secret`."""
    signer, message = _signer(request, secret)
    to_sign = signer.string_to_sign(message, signer.canonical_request(message))
    return str(signer.signature(to_sign, message))
