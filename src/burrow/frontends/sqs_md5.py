"""The MD5 digests SQS answers, computed exactly as SQS does (SDKs check them: the Java,
JavaScript, Ruby and PHP SDKs fail a call whose digest does not match).

MD5OfMessageBody is the MD5 of the body's UTF-8 bytes. MD5OfMessageAttributes (and
MD5OfMessageSystemAttributes, the same over the system attributes) covers the
attributes sorted by name; for each: its name, its data type, one transport byte (1 for
String and Number types, custom ones like `Number.int` too; 2 for Binary ones) and its
value (a string's UTF-8 bytes, or the binary bytes), each but the transport byte
preceded by its length as 4 bytes, big-endian.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from typing import Any

STRING, BINARY = b"\x01", b"\x02"


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


def md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The digest of message (or system) attributes, each `{"DataType": …,
    "StringValue": str}` or `{"DataType": "Binary…", "BinaryValue": bytes}`; None when
    there are none (SQS then leaves the field out)."""
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        value = attributes[name]
        data_type: str = value["DataType"]
        _update(digest, name.encode())
        _update(digest, data_type.encode())
        if data_type.partition(".")[0] == "Binary":
            digest.update(BINARY)
            _update(digest, value["BinaryValue"])
        else:
            digest.update(STRING)
            _update(digest, value["StringValue"].encode())
    return digest.hexdigest()


def _update(digest: Any, data: bytes) -> None:
    digest.update(struct.pack(">I", len(data)))
    digest.update(data)
