"""SQS's two wire protocols, read and written from botocore's SQS API model.

Whatever the wire, a call's parameters come out in the JSON protocol's shape (members by
their model names; blobs as bytes, integers as int, booleans as bool), checked against
the model's types and required members (MissingParameter, nested ones too: a batch
entry without its Id). Members the model does not know are ignored, as AWS does.

- JSON (`X-Amz-Target: AmazonSQS.<Action>`): the body is the input structure. A body
  that is not a JSON object, or a member of the wrong type (a string for an integer,
  a blob that is not base64), is a `SerializationException`, as AWS's JSON services
  answer a body they cannot deserialize (botocore has no class for it: a ClientError
  with that code). Another target prefix is an `UnknownOperationException`; an
  SQS target naming no action is an `InvalidAction`, as in the query protocol.
- Query (`Action=<Action>` in a form body or the query string; `Version` and the
  signature's parameters are read by no one): members are flattened into names like
  `Attribute.1.Name`, `MessageAttribute.1.Value.StringValue` or
  `SendMessageBatchRequestEntry.2.Id`. SQS's query names are those of the query-era
  model (`QUERY_MEMBERS` and friends below, as SQS's Smithy model still names them
  with `xmlName`: botocore's model no longer carries them); the current model's own
  names (`Attributes.1.key`, what botocore writes when told to use the query protocol
  with it) are read too. A value that is not of its member's type is an
  `InvalidParameterValue`; a query string that does not decode (bad UTF-8) a
  `MalformedQueryString`. Answers are XML laid out with SQS's names; characters XML
  1.0 cannot carry are written as U+FFFD, so that an answer always parses.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import orjson
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from burrow.frontends.asgi import Response
from burrow.frontends.sqs_errors import SqsError
from burrow.frontends.sqs_model import OPERATIONS

TARGET_PREFIX = "AmazonSQS."
JSON_TYPE = b"application/x-amz-json-1.0"
XML_TYPE = b"text/xml"
XML_NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"

# The query-era model's names (SQS 2012-11-05 with "protocol": "query").
QUERY_MEMBERS = {  # (structure, member) -> its name on the wire
    ("CreateQueueRequest", "Attributes"): "Attribute",
    ("CreateQueueRequest", "tags"): "Tag",
    ("SetQueueAttributesRequest", "Attributes"): "Attribute",
    ("TagQueueRequest", "Tags"): "Tag",
    ("GetQueueAttributesResult", "Attributes"): "Attribute",
    ("ListQueueTagsResult", "Tags"): "Tag",
    ("Message", "Attributes"): "Attribute",
    ("Message", "MessageAttributes"): "MessageAttribute",
    ("SendMessageRequest", "MessageAttributes"): "MessageAttribute",
    ("SendMessageRequest", "MessageSystemAttributes"): "MessageSystemAttribute",
    ("SendMessageBatchRequestEntry", "MessageAttributes"): "MessageAttribute",
    ("SendMessageBatchRequestEntry", "MessageSystemAttributes"): "MessageSystemAttribute",
    ("MessageAttributeValue", "StringListValues"): "StringListValue",
    ("MessageAttributeValue", "BinaryListValues"): "BinaryListValue",
    ("MessageSystemAttributeValue", "StringListValues"): "StringListValue",
    ("MessageSystemAttributeValue", "BinaryListValues"): "BinaryListValue",
}
# ReceiveMessage's MessageSystemAttributeNames is newer than the query-era model; SQS's
# Smithy model names its elements AttributeName too, as AttributeNames's: such a list is
# read as AttributeNames (which the action reads with it), not twice.
QUERY_LIST_MEMBERS = {  # list -> the name of each of its elements
    "AWSAccountIdList": "AWSAccountId",
    "ActionNameList": "ActionName",
    "AttributeNameList": "AttributeName",
    "MessageAttributeNameList": "MessageAttributeName",
    "TagKeyList": "TagKey",
    "QueueUrlList": "QueueUrl",
    "MessageList": "Message",
    "BatchResultErrorEntryList": "BatchResultErrorEntry",
    "SendMessageBatchRequestEntryList": "SendMessageBatchRequestEntry",
    "SendMessageBatchResultEntryList": "SendMessageBatchResultEntry",
    "DeleteMessageBatchRequestEntryList": "DeleteMessageBatchRequestEntry",
    "DeleteMessageBatchResultEntryList": "DeleteMessageBatchResultEntry",
    "ChangeMessageVisibilityBatchRequestEntryList": "ChangeMessageVisibilityBatchRequestEntry",
    "ChangeMessageVisibilityBatchResultEntryList": "ChangeMessageVisibilityBatchResultEntry",
    "ListMessageMoveTasksResultEntryList": "ListMessageMoveTasksResultEntry",
}
QUERY_MAP_NAMES = {"TagMap": ("Key", "Value")}  # maps not listed: Name and Value
# An XML parser reads a raw CR as a line end (and CR LF as LF): written as a reference,
# a body's CR comes back as sent, and its MD5 matches.
XML_ENTITIES = {"\r": "&#xD;"}
# Characters outside XML 1.0's (those SQS allows in a message, too).
NOT_XML_CHARACTERS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
QUERY_INTEGER = re.compile(r"-?[0-9]{1,19}")  # (a long at most: ranges are the actions')


class Protocol(StrEnum):
    JSON = "json"
    QUERY = "query"


@dataclass(slots=True)
class SqsCall:
    action: str
    params: dict[str, Any]
    protocol: Protocol
    query_mode: bool = False  # the JSON request carried `x-amzn-query-mode: true`


# Reading -------------------------------------------------------------------------------


def decode(
    method: str,
    headers: Mapping[bytes, bytes],
    query: bytes,
    body: bytes,
    queue_url: str | None = None,
) -> SqsCall:
    """The call a request makes (headers by lower-case name); SqsError if malformed.

    `queue_url` is the queue the request's path names, if any: a query-protocol call
    sent to its queue's URL (as older SDKs send them) need not repeat it as QueueUrl.
    """
    target = headers.get(b"x-amz-target")
    if target is not None:
        query_mode = headers.get(b"x-amzn-query-mode", b"").lower() == b"true"
        return _decode_json(target, body, query_mode)
    form = _form(query) | (_form(body) if method == "POST" else {})
    action = form.get("Action")
    if not action:
        raise SqsError("MissingParameter", "The request must contain the parameter Action.")
    shape = _operation(action).input_shape
    if queue_url and shape is not None and "QueueUrl" in shape.members:
        form.setdefault("QueueUrl", queue_url)
    params = _from_query(shape, form, "") if shape is not None else {}
    return SqsCall(action, params, Protocol.QUERY)


def _operation(action: str) -> OperationModel:
    operation = OPERATIONS.get(action)
    if operation is None:
        raise SqsError("InvalidAction", f"The action {action} is not valid for this endpoint.")
    return operation


def _decode_json(target: bytes, body: bytes, query_mode: bool) -> SqsCall:
    name = target.decode("latin-1")
    if not name.startswith(TARGET_PREFIX):
        raise SqsError("UnknownOperationException", f"Unknown operation {name}.")
    action = name[len(TARGET_PREFIX) :]
    shape = _operation(action).input_shape
    try:
        document = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        raise SqsError("SerializationException", "The body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise SqsError("SerializationException", "The body must be a JSON object.")
    params = _from_json(shape, document, shape.name) if shape is not None else {}
    return SqsCall(action, params, Protocol.JSON, query_mode)


def _form(raw: bytes) -> dict[str, str]:
    if not raw:
        return {}
    try:
        return dict(parse_qsl(raw.decode(), keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise SqsError("MalformedQueryString", "The query string is not UTF-8.") from None


def _from_json(shape: Shape, value: Any, where: str) -> Any:
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            raise _wrong_type(where, "a structure")
        members = shape.members
        out = {
            name: _from_json(members[name], item, name)
            for name, item in value.items()
            if item is not None and name in members
        }
        _check_required(shape, out)
        return out
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            raise _wrong_type(where, "a list")
        return [_from_json(shape.member, item, where) for item in value]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            raise _wrong_type(where, "a map")
        return {k: _from_json(shape.value, v, f"{where}.{k}") for k, v in value.items()}
    if kind == "blob":
        if not isinstance(value, str):
            raise _wrong_type(where, "base64 text")
        return _base64(value, where, "SerializationException")
    return _scalar(kind, value, where)


def _scalar(kind: str, value: Any, where: str) -> Any:
    if kind == "string":
        if not isinstance(value, str):
            raise _wrong_type(where, "a string")
    elif kind in ("integer", "long"):
        if type(value) is not int:
            raise _wrong_type(where, "an integer")
    elif kind == "boolean":
        if type(value) is not bool:
            raise _wrong_type(where, "a boolean")
    return value


def _wrong_type(where: str, expected: str) -> SqsError:
    return SqsError("SerializationException", f"{where} must be {expected}.")


def _base64(text: str, where: str, code: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SqsError(code, f"{where} is not valid base64.") from None


def _check_required(shape: StructureShape, out: dict[str, Any]) -> None:
    for name in shape.required_members:
        if name not in out:
            raise SqsError("MissingParameter", f"The request must contain the parameter {name}.")


def _from_query(shape: Shape, form: dict[str, str], prefix: str) -> Any:
    """The value the form holds at `prefix` for `shape`; None when it holds none."""
    if isinstance(shape, StructureShape):
        out = {}
        for name, member in shape.members.items():
            for wire in _member_names(shape, name):
                value = _from_query(member, form, f"{prefix}.{wire}" if prefix else wire)
                if value is not None:
                    out[name] = value
                    break
        if not out and prefix:
            return None
        _check_required(shape, out)
        return out
    if isinstance(shape, ListShape):
        return _query_list(shape, form, prefix)
    if isinstance(shape, MapShape):
        return _query_map(shape, form, prefix)
    text = form.get(prefix)
    if text is None:
        return None
    return _query_scalar(shape.type_name, text, prefix)


def _member_names(shape: StructureShape, name: str) -> tuple[str, ...]:
    wire = QUERY_MEMBERS.get((shape.name, name))
    return (wire, name) if wire else (name,)


def _query_list(shape: ListShape, form: dict[str, str], prefix: str) -> list[Any] | None:
    element = QUERY_LIST_MEMBERS.get(shape.name)
    bases = [prefix]
    if element:  # SQS's flattened lists name their elements, in the member's place
        bases.insert(0, ".".join([*prefix.split(".")[:-1], element]))
    for base in bases:
        items: list[Any] = []
        while True:
            value = _from_query(shape.member, form, f"{base}.{len(items) + 1}")
            if value is None:
                break
            items.append(value)
        if items:
            return items
    return None


def _query_map(shape: MapShape, form: dict[str, str], prefix: str) -> dict[str, Any] | None:
    key_name, value_name = QUERY_MAP_NAMES.get(shape.name, ("Name", "Value"))
    for key_part, value_part in ((key_name, value_name), ("key", "value")):
        out = {}
        i = 1
        while (key := form.get(f"{prefix}.{i}.{key_part}")) is not None:
            value = _from_query(shape.value, form, f"{prefix}.{i}.{value_part}")
            if value is None:
                raise SqsError(
                    "MissingParameter", f"The request must contain {prefix}.{i}.{value_part}."
                )
            out[key] = value
            i += 1
        if out:
            return out
    return None


def _query_scalar(kind: str, text: str, where: str) -> Any:
    if kind in ("integer", "long"):
        if not QUERY_INTEGER.fullmatch(text):
            raise _invalid_value(text, where)
        return int(text)
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise _invalid_value(text, where)
        return text.lower() == "true"
    if kind == "blob":
        return _base64(text, where, "InvalidParameterValue")
    return text


def _invalid_value(text: str, where: str) -> SqsError:
    return SqsError("InvalidParameterValue", f"Value {text[:64]} for parameter {where} is invalid.")


# Writing -------------------------------------------------------------------------------


def _request_id() -> str:
    return os.urandom(16).hex()


def encode(call: SqsCall, result: dict[str, Any]) -> Response:
    """The answer to a call, in its protocol."""
    request_id = _request_id()
    if call.protocol is Protocol.JSON:
        body = orjson.dumps(result, default=_json_blob)
        return Response(200, body, JSON_TYPE, [(b"x-amzn-requestid", request_id.encode())])
    operation = OPERATIONS[call.action]
    inner = ""
    if operation.output_shape is not None and operation.output_shape.members:
        inner = f"<{call.action}Result>{_xml(operation.output_shape, result)}</{call.action}Result>"
    xml = (
        f'<?xml version="1.0"?><{call.action}Response xmlns="{XML_NAMESPACE}">{inner}'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{call.action}Response>"
    )
    return Response(200, _xml_bytes(xml), XML_TYPE, [(b"x-amzn-requestid", request_id.encode())])


def _json_blob(value: Any) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


def _xml(shape: StructureShape, value: dict[str, Any]) -> str:
    parts = []
    for name, member in shape.members.items():
        if value.get(name) is None:
            continue
        wire = QUERY_MEMBERS.get((shape.name, name), name)
        parts.append(_xml_member(member, value[name], wire))
    return "".join(parts)


def _xml_member(shape: Shape, value: Any, wire: str) -> str:
    if isinstance(shape, ListShape):
        element = QUERY_LIST_MEMBERS.get(shape.name, wire)
        return "".join(_xml_member(shape.member, item, element) for item in value)
    if isinstance(shape, MapShape):
        key_name, value_name = QUERY_MAP_NAMES.get(shape.name, ("Name", "Value"))
        return "".join(
            f"<{wire}><{key_name}>{_xml_escape(k)}</{key_name}>"
            f"{_xml_member(shape.value, v, value_name)}</{wire}>"
            for k, v in value.items()
        )
    if isinstance(shape, StructureShape):
        return f"<{wire}>{_xml(shape, value)}</{wire}>"
    return f"<{wire}>{_xml_escape(_xml_text(value))}</{wire}>"


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _xml_escape(text: str) -> str:
    return escape(text, XML_ENTITIES)


def _xml_bytes(xml: str) -> bytes:
    return NOT_XML_CHARACTERS.sub("\ufffd", xml).encode()


def encode_error(protocol: Protocol, error: SqsError) -> Response:
    """An error answer: SQS's JSON shape with the query code in `x-amzn-query-error`,
    or the XML `ErrorResponse`; with Retry-After when the error says when.

    SQS sends the header whether or not the request carried `x-amzn-query-mode`, and
    SDKs rely on it without asking (the JavaScript SDK v3 fails to read an error without
    it): so it does not depend on the call's `query_mode`."""
    request_id = _request_id()
    fault = "Sender" if error.sender_fault else "Receiver"
    headers = [(b"x-amzn-requestid", request_id.encode())]
    if error.retry_after is not None:
        headers.append((b"retry-after", str(error.retry_after).encode()))
    if protocol is Protocol.JSON:
        headers.append((b"x-amzn-query-error", f"{error.query_code};{fault}".encode()))
        body = orjson.dumps({"__type": f"com.amazonaws.sqs#{error.code}", "message": error.message})
        return Response(error.status, body, JSON_TYPE, headers)
    xml = (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{XML_NAMESPACE}"><Error>'
        f"<Type>{fault}</Type><Code>{_xml_escape(error.query_code)}</Code>"
        f"<Message>{_xml_escape(error.message)}</Message><Detail/></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return Response(error.status, _xml_bytes(xml), XML_TYPE, headers)
