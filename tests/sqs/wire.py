"""SQS's wire protocols (`sqs_protocol`, `sqs_errors`) read and written through botocore,
with no server: the `Wire` the tests/sqs/test_wire_*.py tests share, and the values their
cases share.

Each of the 23 actions goes through a real botocore client whose HTTP sending is
replaced by `decode` and `encode`: botocore serializes the call (the JSON protocol with
today's model; the query protocol with SQS's query-era model, tests/data/sqs_query_model,
as older SDKs send it), `decode` must read back exactly the parameters given, and
botocore must parse `encode`'s answer back to exactly the result (`ActionCases`, one
subclass per family of actions). Errors come out as the exception classes and codes SDK
users match on. Malformed requests get SQS's error, and nothing else escapes `decode`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import botocore.session
import pytest
from botocore import xform_name
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.serialize import create_serializer

from burrow.frontends.asgi import Response
from burrow.frontends.sqs_model import MODEL
from burrow.frontends.sqs_protocol import Protocol, SqsCall, decode, encode

QUERY_MODELS = Path(__file__).parent.parent / "data" / "sqs_query_model"
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
PROTOCOLS = ("json", "query")
# An action's case: the parameters a client sends, and a result the action could answer.
Case = tuple[dict[str, Any], dict[str, Any]]


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


def sent_params(action: str, params: dict[str, Any], protocol: str) -> dict[str, Any]:
    """The case's parameters as a client of that protocol's model can send them."""
    params = dict(params)
    if protocol == "query" and action == "ReceiveMessage":
        del params["MessageSystemAttributeNames"]  # (newer than the query-era model)
    return params


def without_metadata(parsed: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in parsed.items() if name != "ResponseMetadata"}


def json_request(target: str, body: bytes) -> SqsCall:
    return decode("POST", {b"x-amz-target": target.encode()}, b"", body)


def query_request(body: bytes) -> SqsCall:
    return decode("POST", FORM, b"", body)


class ActionCases:
    """The tests every action takes, each action of a family's `CASES` in turn: a
    subclass per family of actions (`TestQueueActions`, …) gives them."""

    CASES: ClassVar[dict[str, Case]]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "action" in metafunc.fixturenames:
            metafunc.parametrize("action", sorted(self.CASES))

    def test_a_call_reads_back_as_sent_and_its_answer_as_encoded(
        self, wire: Wire, action: str
    ) -> None:
        params, result = self.CASES[action]
        protocol = wire.client.meta.service_model.protocol
        wire.answer = lambda call: encode(call, result)
        parsed = wire.call(action, sent_params(action, params, protocol))
        call = wire.calls[-1]
        assert (call.action, call.protocol) == (action, Protocol(protocol))
        assert call.params == sent_params(action, params, protocol)
        assert call.query_mode is (protocol == "json")  # botocore asks for query error codes
        assert without_metadata(parsed) == result
        assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 200
        headers = parsed["ResponseMetadata"]["HTTPHeaders"]
        assert parsed["ResponseMetadata"]["RequestId"] == headers["x-amzn-requestid"]
        content_type = "application/x-amz-json-1.0" if protocol == "json" else "text/xml"
        assert headers["content-type"] == content_type

    def test_the_current_models_query_names_are_read_too(self, action: str) -> None:
        """botocore told to use the query protocol with today's model writes its names
        (`Attributes.1.key`, `Entries.1.Id`), not SQS's: they read the same."""
        params = self.CASES[action][0]
        model = MODEL.operation_model(action)
        request = create_serializer("query").serialize_to_request(params, model)
        call = decode("POST", FORM, b"", urlencode(request["body"]).encode())
        assert (call.action, call.params) == (action, params)
