"""Bad SQS requests sent as raw HTTP (what no SDK sends, and what SDKs refuse to): each
gets a 4xx in its protocol's error shape with the code SQS uses, never a 500, and
writes nothing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import BurrowServer
from tests.sqs.clients import SqsClient
from tests.sqs.conftest import frontend_only
from tests.sqs.messages import counts

pytestmark = frontend_only
JSON_TYPE = "application/x-amz-json-1.0"
FORM_TYPE = "application/x-www-form-urlencoded"
XML_NAMESPACE = "{http://queue.amazonaws.com/doc/2012-11-05/}"


@pytest.fixture
def http(sqs_server: BurrowServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sqs_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def url(sqs: SqsClient) -> Iterator[str]:
    """A queue that must still be empty, and the only one, after the bad request."""
    found: str = sqs.create_queue(QueueName="untouched")["QueueUrl"]
    yield found
    assert counts(sqs, found) == (0, 0, 0)
    assert sqs.list_queues()["QueueUrls"] == [found]


def json_call(http: httpx.Client, target: str, body: bytes, path: str = "/") -> httpx.Response:
    headers = {"Content-Type": JSON_TYPE, "X-Amz-Target": target, "x-amzn-query-mode": "true"}
    return http.post(path, content=body, headers=headers)


def json_error(response: httpx.Response) -> str:
    """The code of a JSON-protocol error, checked to be shaped as botocore reads it."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    assert body["__type"].startswith("com.amazonaws.sqs#") or "#" in body["__type"]
    assert body["message"]
    query_code, fault = response.headers["x-amzn-query-error"].split(";")
    assert fault == "Sender"
    return str(query_code)


def query_error(response: httpx.Response) -> str:
    """The code of a query-protocol (XML) error."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    root = ElementTree.fromstring(response.content)
    assert root.tag == XML_NAMESPACE + "ErrorResponse"
    error = root.find(XML_NAMESPACE + "Error")
    assert error is not None
    assert error.findtext(XML_NAMESPACE + "Type") == "Sender"
    assert error.findtext(XML_NAMESPACE + "Message")
    return error.findtext(XML_NAMESPACE + "Code") or ""


def send_body(url: str, **extra: object) -> bytes:
    return json.dumps({"QueueUrl": url, "MessageBody": "x", **extra}).encode()


# SQS does not document what it answers a target no SDK sends; AWS's JSON services answer
# UnknownOperationException, its query API InvalidAction.
UNKNOWN_OPERATION = {"UnknownOperationException", "InvalidAction"}


@pytest.mark.parametrize(
    "target", ["AmazonSQS.NoSuchAction", "AmazonSQS.", "AmazonSQS.sendmessage"]
)
def test_an_unknown_action_is_refused(http: httpx.Client, url: str, target: str) -> None:
    assert json_error(json_call(http, target, send_body(url))) in UNKNOWN_OPERATION


@pytest.mark.parametrize("target", ["AmazonSNS.Publish", "SendMessage", "AmazonSQSX.SendMessage"])
def test_an_unknown_target_prefix_is_refused(http: httpx.Client, url: str, target: str) -> None:
    assert json_error(json_call(http, target, send_body(url))) in UNKNOWN_OPERATION


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'"a string"', b"\xff\xfe", b'{"QueueUrl": "u", "MessageBody": '],
    ids=["broken", "array", "string", "not-utf8", "cut-short"],
)
def test_malformed_json_is_a_serialization_exception(
    http: httpx.Client, url: str, body: bytes
) -> None:
    assert json_error(json_call(http, "AmazonSQS.SendMessage", body)) == "SerializationException"


@pytest.mark.parametrize(
    "extra",
    [{"MessageBody": 5}, {"DelaySeconds": "five"}, {"MessageAttributes": []}, {"QueueUrl": 7}],
    ids=["body-number", "delay-text", "attributes-list", "url-number"],
)
def test_a_member_of_the_wrong_type_is_a_serialization_exception(
    http: httpx.Client, url: str, extra: dict[str, object]
) -> None:
    response = json_call(http, "AmazonSQS.SendMessage", send_body(url, **extra))
    assert json_error(response) == "SerializationException"


def test_missing_parameters_are_missing_parameter(
    http: httpx.Client, url: str, sqs_account: str
) -> None:
    calls = [
        ("SendMessage", {"QueueUrl": url}),
        ("SendMessageBatch", {"QueueUrl": url}),
        ("ReceiveMessage", {}),
        ("DeleteMessage", {"QueueUrl": url}),
        ("ChangeMessageVisibility", {"QueueUrl": url, "ReceiptHandle": "h"}),
        ("SetQueueAttributes", {"QueueUrl": url}),
        ("TagQueue", {"QueueUrl": url}),
        ("AddPermission", {"QueueUrl": url, "Label": "l"}),
        ("StartMessageMoveTask", {}),
    ]
    for action, body in calls:
        response = json_call(http, f"AmazonSQS.{action}", json.dumps(body).encode())
        assert json_error(response) == "MissingParameter", action
    create = json_call(http, "AmazonSQS.CreateQueue", b"{}", path=f"/{sqs_account}")
    assert json_error(create) == "MissingParameter"


def test_a_body_over_the_limit_is_refused_unread(http: httpx.Client, url: str) -> None:
    body = send_body(url).replace(b'"x"', b'"' + b"x" * (8 * 1024 * 1024) + b'"')
    response = json_call(http, "AmazonSQS.SendMessage", body)
    assert 400 <= response.status_code < 500
    assert response.status_code != 500


def form_call(http: httpx.Client, body: bytes, path: str = "/") -> httpx.Response:
    return http.post(path, content=body, headers={"Content-Type": FORM_TYPE})


def test_an_unknown_query_action_is_invalid_action(http: httpx.Client, url: str) -> None:
    body = f"Action=NoSuchAction&Version=2012-11-05&QueueUrl={url}".encode()
    assert query_error(form_call(http, body)) == "InvalidAction"


@pytest.mark.parametrize(
    "body",
    [
        b"Action=SendMessage&QueueUrl=%(url)s&MessageBody=%FF%FE",
        b"Action=SendMessage&QueueUrl=%(url)s&MessageBody=\xff\xfe",
        b"Action=SendMessage&QueueUrl=%(url)s&MessageBody=x&DelaySeconds=soon",
        b"Action=SendMessage&QueueUrl=%(url)s&MessageBody=x&DelaySeconds=--5",
        b"Action=SendMessage&QueueUrl=%(url)s&MessageBody=x&DelaySeconds=" + b"9" * 5000,
        b"Action=SendMessage&QueueUrl=%(url)s&MessageBody=x&MessageAttribute.1.Name=a",
        b"Action=SendMessage&QueueUrl=%(url)s",
        b"Action=SendMessageBatch&QueueUrl=%(url)s&SendMessageBatchRequestEntry.x.Id=a",
    ],
    ids=[
        "bad-utf8-escaped",
        "bad-utf8-raw",
        "delay-text",
        "delay-dashes",
        "delay-5000-digits",
        "attribute-no-value",
        "no-body",
        "entry-not-numbered",
    ],
)
def test_a_malformed_form_body_is_a_query_error(http: httpx.Client, url: str, body: bytes) -> None:
    code = query_error(form_call(http, body.replace(b"%(url)s", url.encode())))
    assert code in {
        "MalformedQueryString",
        "InvalidParameterValue",
        "MissingParameter",
        "InvalidQueryParameter",
        "InvalidMessageContents",
        "AWS.SimpleQueueService.EmptyBatchRequest",
    }


def test_invalid_attribute_names_through_the_query_protocol(http: httpx.Client, url: str) -> None:
    body = f"Action=GetQueueAttributes&QueueUrl={url}&AttributeName.1=Bogus".encode()
    assert query_error(form_call(http, body)) == "InvalidAttributeName"
    form = f"Action=SetQueueAttributes&QueueUrl={url}&Attribute.1.Name=Bogus&Attribute.1.Value=1"
    assert query_error(form_call(http, form.encode())) == "InvalidAttributeName"
