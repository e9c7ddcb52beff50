"""SQS's wire protocols (`sqs_protocol`, `sqs_errors`) read and written through botocore.

Each of the 23 actions goes through a real botocore client whose HTTP sending is
replaced by `decode` and `encode`: botocore serializes the call (the JSON protocol with
today's model; the query protocol with SQS's query-era model, tests/data/sqs_query_model,
as older SDKs send it), `decode` must read back exactly the parameters given, and
botocore must parse `encode`'s answer back to exactly the result. Errors come out as
the exception classes and codes SDK users match on. Malformed requests get SQS's error,
and nothing else escapes `decode`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import botocore.session
import orjson
import pytest
from botocore import xform_name
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from burrow.frontends.asgi import Response
from burrow.frontends.sqs_errors import KINDS, QUERY_TRAITS, SqsError, from_burrow
from burrow.frontends.sqs_model import MODEL
from burrow.frontends.sqs_protocol import Protocol, SqsCall, decode, encode, encode_error

QUERY_MODELS = Path(__file__).parent / "data" / "sqs_query_model"
QUERY_ERA = ServiceModel(
    json.loads((QUERY_MODELS / "sqs" / "2012-11-05" / "service-2.json").read_text()), "sqs"
)
ENDPOINT = "http://burrow.test"
FORM = {b"content-type": b"application/x-www-form-urlencoded; charset=utf-8"}
# Text an XML or form writer must escape, a CR an XML reader would fold into LF, and
# characters beyond ASCII and beyond the BMP.
TRICKY = "a<b>&c\"d'e ]]> \r\n\tf + g=h%i ü 日本 🐇"
QUEUE = f"{ENDPOINT}/acct/jobs?x=<1>&y=2"
ARN = "arn:aws:sqs:us-east-1:acct:jobs"
ATTRIBUTES = {
    "colour": {"DataType": "String", "StringValue": TRICKY},
    "count": {"DataType": "Number.int", "StringValue": "-42"},
    "blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
    "meta.photo": {"DataType": "Binary.png", "BinaryValue": b"\x89PNG\r\n"},
}
TRACE = {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3f"}}
FAILED = [
    {"Id": "b-2", "SenderFault": True, "Code": "ReceiptHandleIsInvalid", "Message": TRICKY},
    {"Id": "c_3", "SenderFault": False, "Code": "InternalError"},
]
MESSAGE = {
    "MessageId": "0190f0b8-1c2d-7e3f-8a9b-0c1d2e3f4a5b",
    "ReceiptHandle": "AQEB+/=",
    "MD5OfBody": "md5 of the body",
    "Body": TRICKY,
    "Attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000"},
    "MD5OfMessageAttributes": "md5 of the attributes",
    "MessageAttributes": ATTRIBUTES,
}
# Each action: the parameters a client sends, and a result the action could answer.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "AddPermission": (
        {"QueueUrl": QUEUE, "Label": "l<1>", "AWSAccountIds": ["111", "222"], "Actions": ["*"]},
        {},
    ),
    "CancelMessageMoveTask": (
        {"TaskHandle": "eyJ0YXNrIjoiMSJ9=="},
        {"ApproximateNumberOfMessagesMoved": 2**40},
    ),
    "ChangeMessageVisibility": (
        {"QueueUrl": QUEUE, "ReceiptHandle": "AQEB+/=", "VisibilityTimeout": 43200},
        {},
    ),
    "ChangeMessageVisibilityBatch": (
        {
            "QueueUrl": QUEUE,
            "Entries": [
                {"Id": "a1", "ReceiptHandle": "h1", "VisibilityTimeout": 0},
                {"Id": "b-2", "ReceiptHandle": "h2"},
            ],
        },
        {"Successful": [{"Id": "a1"}], "Failed": FAILED},
    ),
    "CreateQueue": (
        {
            "QueueName": "jobs",
            "Attributes": {"DelaySeconds": "5", "Policy": '{"a": "<&>"}'},
            "tags": {"team": TRICKY, "ü": ""},
        },
        {"QueueUrl": QUEUE},
    ),
    "DeleteMessage": ({"QueueUrl": QUEUE, "ReceiptHandle": "AQEB+/="}, {}),
    "DeleteMessageBatch": (
        {
            "QueueUrl": QUEUE,
            "Entries": [{"Id": str(i), "ReceiptHandle": f"h{i}"} for i in range(10)],
        },
        {"Successful": [{"Id": str(i)} for i in range(8)], "Failed": FAILED},
    ),
    "DeleteQueue": ({"QueueUrl": QUEUE}, {}),
    "GetQueueAttributes": (
        {"QueueUrl": QUEUE, "AttributeNames": ["All", "QueueArn"]},
        {"Attributes": {"QueueArn": ARN, "ApproximateNumberOfMessages": "7"}},
    ),
    "GetQueueUrl": ({"QueueName": "jobs", "QueueOwnerAWSAccountId": "acct"}, {"QueueUrl": QUEUE}),
    "ListDeadLetterSourceQueues": (
        {"QueueUrl": QUEUE, "NextToken": "t+/=", "MaxResults": 1000},
        {"queueUrls": [QUEUE, f"{ENDPOINT}/acct/other"], "NextToken": "next+/="},
    ),
    "ListMessageMoveTasks": (
        {"SourceArn": ARN, "MaxResults": 10},
        {
            "Results": [
                {
                    "TaskHandle": "handle",
                    "Status": "RUNNING",
                    "SourceArn": ARN,
                    "DestinationArn": ARN + "-back",
                    "MaxNumberOfMessagesPerSecond": 50,
                    "ApproximateNumberOfMessagesMoved": 0,
                    "ApproximateNumberOfMessagesToMove": 2**40,
                    "StartedTimestamp": 1700000000000,
                },
                {"Status": "FAILED", "SourceArn": ARN, "FailureReason": TRICKY},
            ]
        },
    ),
    "ListQueueTags": ({"QueueUrl": QUEUE}, {"Tags": {"team": TRICKY, "empty": ""}}),
    "ListQueues": (
        {"QueueNamePrefix": "jo", "NextToken": "t", "MaxResults": 1},
        {"QueueUrls": [QUEUE], "NextToken": "n"},
    ),
    "PurgeQueue": ({"QueueUrl": QUEUE}, {}),
    "ReceiveMessage": (
        {
            "QueueUrl": QUEUE,
            "AttributeNames": ["All"],
            "MessageSystemAttributeNames": ["ApproximateReceiveCount", "SentTimestamp"],
            "MessageAttributeNames": ["All", "meta.*"],
            "MaxNumberOfMessages": 10,
            "VisibilityTimeout": 0,
            "WaitTimeSeconds": 20,
            "ReceiveRequestAttemptId": "attempt",
        },
        {"Messages": [MESSAGE, {**MESSAGE, "MessageId": "second", "Body": ""}]},
    ),
    "RemovePermission": ({"QueueUrl": QUEUE, "Label": "l<1>"}, {}),
    "SendMessage": (
        {
            "QueueUrl": QUEUE,
            "MessageBody": TRICKY,
            "DelaySeconds": 900,
            "MessageAttributes": ATTRIBUTES,
            "MessageSystemAttributes": TRACE,
            "MessageDeduplicationId": "d",
            "MessageGroupId": "g",
        },
        {
            "MD5OfMessageBody": "md5 of the body",
            "MD5OfMessageAttributes": "md5 of the attributes",
            "MD5OfMessageSystemAttributes": "md5 of the system attributes",
            "MessageId": "id",
            "SequenceNumber": "10000000000000000000",
        },
    ),
    "SendMessageBatch": (
        {
            "QueueUrl": QUEUE,
            "Entries": [
                {
                    "Id": f"m{i}",
                    "MessageBody": f"{TRICKY} {i}",
                    "DelaySeconds": i,
                    "MessageAttributes": ATTRIBUTES,
                    "MessageSystemAttributes": TRACE,
                }
                for i in range(10)
            ],
        },
        {
            "Successful": [
                {"Id": "m0", "MessageId": "id0", "MD5OfMessageBody": "x"},
                {
                    "Id": "m1",
                    "MessageId": "id1",
                    "MD5OfMessageBody": "y",
                    "MD5OfMessageAttributes": "z",
                    "MD5OfMessageSystemAttributes": "w",
                },
            ],
            "Failed": FAILED,
        },
    ),
    "SetQueueAttributes": (
        {"QueueUrl": QUEUE, "Attributes": {"RedrivePolicy": '{"maxReceiveCount": "2"}'}},
        {},
    ),
    "StartMessageMoveTask": (
        {"SourceArn": ARN, "DestinationArn": ARN + "-back", "MaxNumberOfMessagesPerSecond": 500},
        {"TaskHandle": "eyJ0YXNrIjoiMSJ9=="},
    ),
    "TagQueue": ({"QueueUrl": QUEUE, "Tags": {"team": TRICKY}}, {}),
    "UntagQueue": ({"QueueUrl": QUEUE, "TagKeys": ["team", "ü"]}, {}),
}
PROTOCOLS = ("json", "query")


class Body:
    """A response body as botocore reads one from its HTTP layer."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


class Wire:
    """A botocore SQS client whose requests are read by `decode` and answered by
    `answer` (through `encode` or `encode_error`) instead of a server."""

    def __init__(self, protocol: str) -> None:
        session = botocore.session.get_session()
        if protocol == "query":  # SQS's query-era model, as older SDKs have it
            session.register_component("data_loader", Loader([str(QUERY_MODELS)]))
        self.client = session.create_client(
            "sqs",
            endpoint_url=ENDPOINT,
            region_name="us-east-1",
            aws_access_key_id="acct",
            aws_secret_access_key="secret",
            config=Config(retries={"total_max_attempts": 1}, parameter_validation=False),
        )
        self.client.meta.events.register("before-send.sqs", self._send)
        self.calls: list[SqsCall] = []
        self.answer: Callable[[SqsCall], Response] = lambda call: encode(call, {})
        self.sent: list[tuple[str, dict[bytes, bytes], bytes, bytes]] = []

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        headers = {name.lower().encode(): _bytes(value) for name, value in request.headers.items()}
        query = urlsplit(request.url).query.encode()
        body = _bytes(request.body or b"")
        self.sent.append((request.method, headers, query, body))
        call = decode(request.method, headers, query, body)
        self.calls.append(call)
        response = self.answer(call)
        answer_headers = {"content-type": response.content_type.decode()}
        answer_headers |= {name.decode(): value.decode() for name, value in response.headers}
        return AWSResponse(request.url, response.status, answer_headers, Body(response.body))

    def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = getattr(self.client, xform_name(action))(**params)
        return found


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


@pytest.fixture(scope="module", params=PROTOCOLS)
def wire(request: pytest.FixtureRequest) -> Wire:
    return Wire(request.param)


def sent_params(action: str, protocol: str) -> dict[str, Any]:
    """The case's parameters as a client of that protocol's model can send them."""
    params = dict(CASES[action][0])
    if protocol == "query" and action == "ReceiveMessage":
        del params["MessageSystemAttributeNames"]  # (newer than the query-era model)
    return params


def without_metadata(parsed: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in parsed.items() if name != "ResponseMetadata"}


def test_every_action_of_the_model_has_a_case() -> None:
    assert sorted(CASES) == sorted(MODEL.operation_names) == sorted(QUERY_ERA.operation_names)
    assert len(CASES) == 23


@pytest.mark.parametrize("action", sorted(CASES))
def test_a_call_reads_back_as_sent_and_its_answer_as_encoded(wire: Wire, action: str) -> None:
    result = CASES[action][1]
    protocol = wire.client.meta.service_model.protocol
    wire.answer = lambda call: encode(call, result)
    parsed = wire.call(action, sent_params(action, protocol))
    call = wire.calls[-1]
    assert (call.action, call.protocol) == (action, Protocol(protocol))
    assert call.params == sent_params(action, protocol)
    assert call.query_mode is (protocol == "json")  # botocore asks for query error codes
    assert without_metadata(parsed) == result
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 200
    headers = parsed["ResponseMetadata"]["HTTPHeaders"]
    assert parsed["ResponseMetadata"]["RequestId"] == headers["x-amzn-requestid"]
    content_type = "application/x-amz-json-1.0" if protocol == "json" else "text/xml"
    assert headers["content-type"] == content_type


@pytest.mark.parametrize("action", sorted(CASES))
def test_the_current_models_query_names_are_read_too(action: str) -> None:
    """botocore told to use the query protocol with today's model writes its names
    (`Attributes.1.key`, `Entries.1.Id`), not SQS's: they read the same."""
    params = CASES[action][0]
    request = create_serializer("query").serialize_to_request(params, MODEL.operation_model(action))
    call = decode("POST", FORM, b"", urlencode(request["body"]).encode())
    assert (call.action, call.params) == (action, params)


def test_a_get_with_the_call_in_its_query_string_reads_as_the_post() -> None:
    wire = Wire("query")
    params = sent_params("SendMessageBatch", "query")
    wire.call("SendMessageBatch", params)
    _, _, _, body = wire.sent[-1]
    assert decode("GET", {}, body, b"").params == params
    first, _, rest = body.partition(b"&QueueUrl=")  # a POST may carry some in its URL
    assert decode("POST", FORM, first, b"QueueUrl=" + rest).params == params


def test_version_and_signature_parameters_are_no_members() -> None:
    query = b"Action=DeleteQueue&Version=2012-11-05&QueueUrl=u&X-Amz-Signature=s&Signature=s"
    expected = SqsCall("DeleteQueue", {"QueueUrl": "u"}, Protocol.QUERY)
    assert decode("GET", {}, query, b"") == expected


# Answers that botocore must read --------------------------------------------------------


def test_answers_with_no_result_members_are_empty() -> None:
    json_answer = encode(SqsCall("DeleteMessage", {}, Protocol.JSON), {})
    assert json_answer.body == b"{}"
    xml = encode(SqsCall("DeleteMessage", {}, Protocol.QUERY), {}).body.decode()
    assert "<DeleteMessageResult" not in xml
    assert xml.startswith('<?xml version="1.0"?><DeleteMessageResponse xmlns=')
    assert "<ResponseMetadata><RequestId>" in xml


def test_json_answers_carry_blobs_as_base64() -> None:
    result = {"Messages": [{"MessageAttributes": {"b": ATTRIBUTES["blob"]}}]}
    body = orjson.loads(encode(SqsCall("ReceiveMessage", {}, Protocol.JSON), result).body)
    sent = body["Messages"][0]["MessageAttributes"]["b"]["BinaryValue"]
    assert base64.b64decode(sent) == bytes(range(256))


def test_xml_answers_use_sqs_element_names() -> None:
    _, result = CASES["ReceiveMessage"]
    xml = encode(SqsCall("ReceiveMessage", {}, Protocol.QUERY), result).body.decode()
    assert "<ReceiveMessageResult><Message><MessageId>" in xml
    assert "<Attribute><Name>ApproximateReceiveCount</Name><Value>3</Value></Attribute>" in xml
    assert (
        "<MessageAttribute><Name>count</Name><Value><StringValue>-42</StringValue>"
        "<DataType>Number.int</DataType></Value></MessageAttribute>"
    ) in xml
    assert "a&lt;b&gt;&amp;c\"d'e ]]&gt; &#xD;\n\tf" in xml
    tags = encode(SqsCall("ListQueueTags", {}, Protocol.QUERY), CASES["ListQueueTags"][1])
    assert b"<Tag><Key>empty</Key><Value></Value></Tag>" in tags.body


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_characters_xml_cannot_carry_still_make_an_answer_botocore_reads(
    protocol: str,
) -> None:
    wire = Wire(protocol)
    odd = "bad\x00\x08\x0b\ufffe name"
    wire.answer = lambda call: encode(call, {"QueueUrl": odd})
    url = wire.client.get_queue_url(QueueName="q")["QueueUrl"]
    assert url == (odd if protocol == "json" else "bad\ufffd\ufffd\ufffd\ufffd name")
    wire.answer = lambda call: encode_error(call.protocol, SqsError("InvalidAttributeName", odd))
    with pytest.raises(ClientError) as raised:
        wire.client.get_queue_url(QueueName="q")
    assert raised.value.response["Error"]["Code"] == "InvalidAttributeName"


# Errors ----------------------------------------------------------------------------------


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


# Requests that are not right --------------------------------------------------------------


def json_request(target: str, body: bytes) -> SqsCall:
    return decode("POST", {b"x-amz-target": target.encode()}, b"", body)


def refused(read: Callable[[], SqsCall]) -> tuple[str, str]:
    with pytest.raises(SqsError) as raised:
        read()
    return raised.value.code, raised.value.message


@pytest.mark.parametrize(
    ("target", "body", "code"),
    [
        ("DynamoDB_20120810.GetItem", b"{}", "UnknownOperationException"),
        ("AmazonSQS", b"{}", "UnknownOperationException"),
        ("AmazonSQS.Bogus", b"{}", "InvalidAction"),
        ("AmazonSQS.sendmessage", b"{}", "InvalidAction"),
        ("AmazonSQS.ListQueues", b"{not json", "SerializationException"),
        ("AmazonSQS.ListQueues", b"[]", "SerializationException"),
        ("AmazonSQS.ListQueues", b'"text"', "SerializationException"),
        ("AmazonSQS.ListQueues", b'{"MaxResults": "10"}', "SerializationException"),
        ("AmazonSQS.ListQueues", b'{"MaxResults": 1.5}', "SerializationException"),
        ("AmazonSQS.ListQueues", b'{"MaxResults": true}', "SerializationException"),
        ("AmazonSQS.ListQueues", b'{"MaxResults": 1e400}', "SerializationException"),
        ("AmazonSQS.ListQueues", b'{"QueueNamePrefix": 5}', "SerializationException"),
        ("AmazonSQS.DeleteQueue", b"", "MissingParameter"),
        ("AmazonSQS.DeleteQueue", b'{"QueueUrl": null}', "MissingParameter"),
        ("AmazonSQS.UntagQueue", b'{"QueueUrl": "u", "TagKeys": "k"}', "SerializationException"),
        ("AmazonSQS.TagQueue", b'{"QueueUrl": "u", "Tags": ["k"]}', "SerializationException"),
        ("AmazonSQS.TagQueue", b'{"QueueUrl": "u", "Tags": {"k": 1}}', "SerializationException"),
        (
            "AmazonSQS.SendMessageBatch",
            b'{"QueueUrl": "u", "Entries": [{"Id": "a", "MessageBody": "b"}, {"Id": "c"}]}',
            "MissingParameter",
        ),
        (
            "AmazonSQS.SendMessageBatch",
            b'{"QueueUrl": "u", "Entries": ["a"]}',
            "SerializationException",
        ),
        (
            "AmazonSQS.SendMessage",
            b'{"QueueUrl": "u", "MessageBody": "b", "MessageAttributes": {"a": {}}}',
            "MissingParameter",
        ),
        (
            "AmazonSQS.SendMessage",
            b'{"QueueUrl": "u", "MessageBody": "b", "MessageAttributes": '
            b'{"a": {"DataType": "Binary", "BinaryValue": "not base64!"}}}',
            "SerializationException",
        ),
        (
            "AmazonSQS.SendMessage",
            b'{"QueueUrl": "u", "MessageBody": "b", "MessageAttributes": '
            b'{"a": {"DataType": "Binary", "BinaryValue": 12}}}',
            "SerializationException",
        ),
    ],
)
def test_bad_json_requests_get_the_error_sqs_answers(target: str, body: bytes, code: str) -> None:
    assert refused(lambda: json_request(target, body))[0] == code


def test_json_members_the_model_does_not_know_are_ignored() -> None:
    body = b'{"QueueUrl": "u", "Colour": "blue", "Entries": [], "MaxResults": null}'
    call = json_request("AmazonSQS.DeleteQueue", body)
    assert call.params == {"QueueUrl": "u"}
    assert call.query_mode is False  # (no x-amzn-query-mode header)


def query_request(body: bytes) -> SqsCall:
    return decode("POST", FORM, b"", body)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "MissingParameter"),
        (b"QueueUrl=u", "MissingParameter"),
        (b"Action=", "MissingParameter"),
        (b"Action=Bogus", "InvalidAction"),
        (b"Action=deletequeue&QueueUrl=u", "InvalidAction"),
        (b"Action=DeleteQueue", "MissingParameter"),
        (b"Action=DeleteQueue&QueueUrl=%FF", "MalformedQueryString"),
        (b"Action=DeleteQueue&QueueUrl=\xff", "MalformedQueryString"),
        (b"Action=ListQueues&MaxResults=ten", "InvalidParameterValue"),
        (b"Action=ListQueues&MaxResults=", "InvalidParameterValue"),
        (b"Action=ListQueues&MaxResults=--5", "InvalidParameterValue"),
        (b"Action=ListQueues&MaxResults=1.5", "InvalidParameterValue"),
        (b"Action=ListQueues&MaxResults=%EF%BC%95", "InvalidParameterValue"),  # (a wide 5)
        (b"Action=ListQueues&MaxResults=" + b"9" * 5000, "InvalidParameterValue"),
        (b"Action=SendMessage&QueueUrl=u", "MissingParameter"),
        (
            b"Action=SendMessage&QueueUrl=u&MessageBody=b&MessageAttribute.1.Name=a",
            "MissingParameter",
        ),
        (
            b"Action=SendMessage&QueueUrl=u&MessageBody=b&MessageAttribute.1.Name=a"
            b"&MessageAttribute.1.Value.StringValue=v",
            "MissingParameter",
        ),
        (
            b"Action=SendMessage&QueueUrl=u&MessageBody=b&MessageAttribute.1.Name=a"
            b"&MessageAttribute.1.Value.DataType=Binary"
            b"&MessageAttribute.1.Value.BinaryValue=not+base64!",
            "InvalidParameterValue",
        ),
        (
            b"Action=SendMessageBatch&QueueUrl=u&SendMessageBatchRequestEntry.1.Id=a",
            "MissingParameter",
        ),
    ],
)
def test_bad_query_requests_get_the_error_sqs_answers(body: bytes, code: str) -> None:
    assert refused(lambda: query_request(body))[0] == code


def test_a_missing_parameter_is_named() -> None:
    code, message = refused(lambda: query_request(b"Action=SendMessage&QueueUrl=u"))
    assert code == "MissingParameter"
    assert message == "The request must contain the parameter MessageBody."


def test_query_parameters_the_model_does_not_know_are_ignored() -> None:
    body = b"Action=ListQueues&Colour=blue&MaxResults=5&QueueNamePrefix=&&x"
    assert query_request(body).params == {"MaxResults": 5, "QueueNamePrefix": ""}


# Anything at all gets an SqsError or a call, never another exception -------------------


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
MEMBER_NAMES = st.sampled_from(
    "QueueUrl Entries Id MessageBody MessageAttributes DataType BinaryValue StringValue"
    " DelaySeconds MessageSystemAttributes Tags".split()
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    action=st.sampled_from(sorted(CASES)),
    document=st.dictionaries(MEMBER_NAMES, JSON_VALUES, max_size=4),
    noise=st.binary(max_size=40),
)
def test_any_json_request_is_a_call_or_an_sqs_error(
    action: str, document: dict[str, Any], noise: bytes
) -> None:
    for body in (json.dumps(document).encode(), noise):  # (NaN and huge integers too)
        try:
            json_request(f"AmazonSQS.{action}", body)
        except SqsError:
            pass


FORM_NAMES = st.sampled_from(
    "QueueUrl MessageBody MaxResults SendMessageBatchRequestEntry.1.Id"
    " SendMessageBatchRequestEntry.1.MessageBody MessageAttribute.1.Name"
    " MessageAttribute.1.Value.DataType MessageAttribute.1.Value.BinaryValue"
    " Attribute.1.Name Attribute.1.Value Tag.1.Key AttributeName.1 Entries.1.Id".split()
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    action=st.sampled_from(sorted(CASES)),
    form=st.dictionaries(FORM_NAMES, st.text(max_size=12), max_size=6),
    noise=st.binary(max_size=40),
)
def test_any_query_request_is_a_call_or_an_sqs_error(
    action: str, form: dict[str, str], noise: bytes
) -> None:
    for body in (urlencode({"Action": action, **form}).encode(), b"Action=" + noise):
        try:
            query_request(body)
        except SqsError:
            pass
