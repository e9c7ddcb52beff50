"""The MD5 digests SQS answers, computed here the documented way to check Burrow's.

SQS developer guide, "Calculating the MD5 message digest for message attributes":
sort the attributes by name; for each, encode its name, its data type and its value
as 4-byte big-endian length + UTF-8 bytes, with one transport-type byte (1 for
String and Number types, custom ones included, 2 for Binary) before the value; the
digest is the MD5 of all of that. The body's digest is the MD5 of its UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def body_digest(body: str) -> str:
    return md5_hex(body.encode("utf-8"))


def _with_length(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def attributes_digest(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    encoded = b""
    for name, value in sorted(attributes.items()):
        data_type: str = value["DataType"]
        encoded += _with_length(name.encode()) + _with_length(data_type.encode())
        if data_type.split(".")[0] == "Binary":
            encoded += b"\x02" + _with_length(bytes(value["BinaryValue"]))
        else:
            encoded += b"\x01" + _with_length(str(value["StringValue"]).encode())
    return md5_hex(encoded)
