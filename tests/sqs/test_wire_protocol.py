"""SQS's wire protocols in general (tests/sqs/wire.py): every action has its case, the
query protocol's framings (a GET, parameters that are no members), answers botocore must
read, and anything at all decoded to a call or an SQS error, never another exception."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burrow.frontends.sqs_errors import SqsError
from burrow.frontends.sqs_model import MODEL
from burrow.frontends.sqs_protocol import Protocol, SqsCall, decode, encode, encode_error
from tests.sqs import test_wire_batches, test_wire_messages, test_wire_moves, test_wire_queues
from tests.sqs.wire import (
    ATTRIBUTES,
    FORM,
    PROTOCOLS,
    QUERY_ERA,
    Case,
    Wire,
    json_request,
    query_request,
    sent_params,
)

FAMILIES = (test_wire_queues, test_wire_messages, test_wire_batches, test_wire_moves)
CASES: dict[str, Case] = {
    action: case for family in FAMILIES for action, case in family.CASES.items()
}


def test_every_action_of_the_model_has_a_case() -> None:
    assert sorted(CASES) == sorted(MODEL.operation_names) == sorted(QUERY_ERA.operation_names)
    assert len(CASES) == 23


def test_a_get_with_the_call_in_its_query_string_reads_as_the_post() -> None:
    wire = Wire("query")
    params = sent_params("SendMessageBatch", CASES["SendMessageBatch"][0], "query")
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
