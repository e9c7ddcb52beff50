"""SQS's errors on the wire (`sqs_errors`): each reaches botocore as SQS sends it, with
the code SDK users match on, and Burrow's errors become the SQS errors clients expect."""

from __future__ import annotations

import orjson
import pytest
from botocore.exceptions import ClientError

from burrow.errors import (
    BackendUnavailable,
    BurrowError,
    Forbidden,
    InvalidRequest,
    MessageNotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
    Unauthorized,
)
from burrow.frontends.sqs_errors import KINDS, QUERY_TRAITS, SqsError, from_burrow
from burrow.frontends.sqs_model import MODEL
from burrow.frontends.sqs_protocol import Protocol, encode_error
from tests.sqs.wire import QUERY_ERA, TRICKY, Wire


@pytest.mark.parametrize("code", sorted(KINDS))
def test_each_error_reaches_the_client_as_sqs_sends_it(wire: Wire, code: str) -> None:
    kind = KINDS[code]
    protocol = wire.client.meta.service_model.protocol
    message = f"{code}: {TRICKY}"
    wire.answer = lambda call: encode_error(call.protocol, SqsError(code, message, 7))
    with pytest.raises(ClientError) as raised:
        wire.client.get_queue_url(QueueName="jobs")
    error = raised.value.response["Error"]
    assert error["Code"] == kind.query_code  # what SDK users match on
    assert error["Message"] == message
    assert error["Type"] == ("Sender" if kind.sender_fault else "Receiver")
    metadata = raised.value.response["ResponseMetadata"]
    assert metadata["HTTPStatusCode"] == kind.status
    assert metadata["HTTPHeaders"]["retry-after"] == "7"
    model = MODEL if protocol == "json" else QUERY_ERA
    if code in {shape.name for shape in model.error_shapes}:  # its own exception class
        assert isinstance(raised.value, getattr(wire.client.exceptions, code))


def test_json_errors_name_their_shape_and_their_query_code() -> None:
    answer = encode_error(Protocol.JSON, SqsError("QueueDoesNotExist", "gone"))
    assert answer.status == 400
    assert orjson.loads(answer.body) == {
        "__type": "com.amazonaws.sqs#QueueDoesNotExist",
        "message": "gone",
    }
    headers = dict(answer.headers)
    assert headers[b"x-amzn-query-error"] == b"AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert b"retry-after" not in headers
    assert answer.content_type == b"application/x-amz-json-1.0"


def test_xml_errors_are_sqs_error_responses() -> None:
    answer = encode_error(Protocol.QUERY, SqsError("InternalFailure", "a < b"))
    assert answer.status == 500
    xml = answer.body.decode()
    assert (
        '<ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error>'
        "<Type>Receiver</Type><Code>InternalFailure</Code><Message>a &lt; b</Message>"
        "<Detail/></Error><RequestId>"
    ) in xml


def test_error_codes_agree_with_the_query_era_model() -> None:
    """The errors the query-era model knows answer its query codes (the codes SQS sent
    then and still sends), with its statuses and faults where it states them."""
    for shape in QUERY_ERA.error_shapes:
        trait = shape.metadata.get("error", {})
        kind = KINDS[shape.name]
        assert kind.query_code == trait.get("code", shape.name), shape.name
        if trait:
            assert kind.status == trait["httpStatusCode"], shape.name
            assert kind.sender_fault is trait["senderFault"], shape.name
    model_errors = {shape.name for shape in MODEL.error_shapes}
    assert set(QUERY_TRAITS) <= model_errors <= set(KINDS)


def test_an_unknown_error_name_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        SqsError("NoSuchError", "")


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (RateLimited("slow down", retry_after=3), "ThrottlingException", 400),
        (BackendUnavailable("down", retry_after=2), "ServiceUnavailable", 503),
        (QuotaExceeded("messages", "too many messages"), "OverLimit", 403),
        (Unauthorized("who?"), "InvalidClientTokenId", 403),
        (Forbidden("not yours"), "AccessDenied", 403),
        (MessageNotFound("m"), "QueueDoesNotExist", 400),
        (RequestTimeout("too slow"), "RequestTimeout", 408),
        (PayloadTooLarge("too big"), "InvalidParameterValue", 400),
        (InvalidRequest("bad"), "InvalidParameterValue", 400),
        (BurrowError("secret detail"), "InternalFailure", 500),
    ],
)
def test_burrow_errors_become_the_sqs_errors_clients_expect(
    error: BurrowError, code: str, status: int
) -> None:
    sqs = from_burrow(error)
    assert (sqs.code, sqs.status) == (code, status)
    assert sqs.retry_after == getattr(error, "retry_after", None)
    assert "secret" not in sqs.message  # (a server's own failure is not described)


def test_a_burrow_error_naming_its_sqs_code_keeps_it() -> None:
    refusal = Forbidden("signed for another account")
    refusal.sqs_code = "SignatureDoesNotMatch"  # type: ignore[attr-defined]
    sqs = from_burrow(refusal)
    assert (sqs.code, sqs.status, sqs.message) == (
        "SignatureDoesNotMatch",
        403,
        "signed for another account",
    )
