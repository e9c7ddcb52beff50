"""What an SQS message carries besides its body: message attributes and system attributes.

Checked as SQS checks them, and kept in the message's `meta` (see `NewMessage`), as
JSON with binary values in base64, so that a v1.0 reader sees the body alone. A message
moved to a dead-letter queue, or back, keeps there its first sent time (`sent`).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from burrow.frontends.sqs_errors import SqsError
from burrow.frontends.sqs_protocol import NOT_XML_CHARACTERS

MAX_ATTRIBUTES = 10
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\.[^\s]{1,249})?")
SYSTEM_ATTRIBUTES = frozenset({"AWSTraceHeader"})

Attributes = dict[str, dict[str, Any]]  # name -> {DataType, StringValue | BinaryValue}


def check_text(text: str, what: str) -> str:
    if NOT_XML_CHARACTERS.search(text):
        raise SqsError(
            "InvalidMessageContents", f"Invalid characters found in {what}: only XML characters"
        )
    return text


def check_attributes(given: Any, system: bool = False) -> Attributes:
    """MessageAttributes (or MessageSystemAttributes) as SQS accepts them."""
    kind = "MessageSystemAttribute" if system else "MessageAttribute"
    if not given:
        return {}
    if not isinstance(given, dict):
        raise SqsError("InvalidParameterValue", f"{kind}s must be a map")
    if len(given) > MAX_ATTRIBUTES:
        raise SqsError(
            "InvalidParameterValue",
            f"Number of message attributes [{len(given)}] exceeds the allowed maximum "
            f"[{MAX_ATTRIBUTES}].",
        )
    checked: Attributes = {}
    for name, value in given.items():
        _check_name(name, kind, system)
        checked[name] = _check_value(name, value, kind)
    return checked


def _check_name(name: str, kind: str, system: bool) -> None:
    if system:
        if name not in SYSTEM_ATTRIBUTES:
            raise SqsError(
                "InvalidParameterValue",
                f"{kind} name {name!r} is not supported: only AWSTraceHeader.",
            )
        return
    lowered = name.lower()
    if (
        not _NAME.fullmatch(name)
        or name.startswith(".")
        or name.endswith(".")
        or ".." in name
        or lowered.startswith(("aws.", "amazon."))
    ):
        raise SqsError(
            "InvalidParameterValue",
            f"The message attribute name '{name}' is invalid. Attribute name can contain "
            "A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.) characters.",
        )


def _check_value(name: str, value: Any, kind: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SqsError("InvalidParameterValue", f"{kind} {name} must be a structure")
    data_type = value.get("DataType")
    if not isinstance(data_type, str) or not data_type:
        raise SqsError("InvalidParameterValue", f"The {kind} '{name}' must contain a DataType.")
    if not _DATA_TYPE.fullmatch(data_type):
        raise SqsError(
            "InvalidParameterValue",
            f"The message attribute '{name}' has an invalid message attribute type, the "
            "set of supported type prefixes is Binary, Number, and String.",
        )
    if value.get("StringListValues") or value.get("BinaryListValues"):
        raise SqsError("UnsupportedOperation", "List values are not supported.")
    if data_type.startswith("Binary"):
        binary = value.get("BinaryValue")
        if not isinstance(binary, bytes) or not binary:
            raise SqsError(
                "InvalidParameterValue",
                f"The {kind} '{name}' with type 'Binary' must use field 'Binary'.",
            )
        return {"DataType": data_type, "BinaryValue": binary}
    text = value.get("StringValue")
    if not isinstance(text, str) or not text:
        raise SqsError(
            "InvalidParameterValue",
            f"The {kind} '{name}' must contain a non-empty value of type 'String'.",
        )
    if data_type.startswith("Number") and not _is_number(text):
        raise SqsError(
            "InvalidParameterValue",
            f"Can't cast the value of message attribute '{name}' to a number.",
        )
    check_text(text, f"the value of {kind} {name}")
    return {"DataType": data_type, "StringValue": text}


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def size(attributes: Attributes) -> int:
    """What the attributes add to a message's size, as SQS counts it (name, type, value)."""
    total = 0
    for name, value in attributes.items():
        data = value.get("BinaryValue") or value.get("StringValue", "").encode()
        total += len(name.encode()) + len(value["DataType"].encode()) + len(data)
    return total


@dataclass(slots=True)
class Meta:
    attributes: Attributes = field(default_factory=dict)
    system: Attributes = field(default_factory=dict)
    group: str = ""  # MessageGroupId, as given
    sent: float = 0.0  # when first sent, if the message has moved queues since
    source: str = ""  # the ARN of the queue it was dead-lettered from

    def encode(self) -> bytes:
        if not (self.attributes or self.system or self.group or self.sent or self.source):
            return b""  # (most messages: nothing to store)
        document: dict[str, Any] = {}
        if self.attributes:
            document["a"] = _stored(self.attributes)
        if self.system:
            document["s"] = _stored(self.system)
        if self.group:
            document["g"] = self.group
        if self.sent:
            document["t"] = self.sent
        if self.source:
            document["d"] = self.source
        return orjson.dumps(document)

    @classmethod
    def decode(cls, meta: bytes) -> Meta:
        if not meta:
            return cls()
        document = orjson.loads(meta)
        return cls(
            _loaded(document.get("a", {})),
            _loaded(document.get("s", {})),
            document.get("g", ""),
            document.get("t", 0.0),
            document.get("d", ""),
        )


def _stored(attributes: Attributes) -> dict[str, dict[str, str]]:
    return {
        name: {
            "DataType": v["DataType"],
            "BinaryValue": base64.b64encode(v["BinaryValue"]).decode(),
        }
        if "BinaryValue" in v
        else dict(v)
        for name, v in attributes.items()
    }


def _loaded(stored: dict[str, dict[str, str]]) -> Attributes:
    return {
        name: {"DataType": v["DataType"], "BinaryValue": base64.b64decode(v["BinaryValue"])}
        if "BinaryValue" in v
        else dict(v)
        for name, v in stored.items()
    }


def selected(attributes: Attributes, names: Iterable[str]) -> Attributes:
    """The attributes a receive asks for: `All` or `.*`, a `prefix.*`, or exact names."""
    wanted = list(names)
    if not wanted or not attributes:
        return {}
    if "All" in wanted or ".*" in wanted:
        return attributes
    prefixes = tuple(n[:-1] for n in wanted if n.endswith(".*"))
    exact = set(wanted)
    return {
        name: value
        for name, value in attributes.items()
        if name in exact or (prefixes and name.startswith(prefixes))
    }
