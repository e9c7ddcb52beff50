"""`sqs_md5` on the digests the AWS SDKs' own tests publish (they check SQS's answers
against them) and on moto's, which boto3 users have matched against SQS for years."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from burrow.frontends.sqs_md5 import md5_of_attributes, md5_of_body

Attributes = dict[str, dict[str, Any]]


def string(value: str, data_type: str = "String") -> dict[str, Any]:
    return {"DataType": data_type, "StringValue": value}


def binary(value: bytes, data_type: str = "Binary") -> dict[str, Any]:
    return {"DataType": data_type, "BinaryValue": value}


# aws-sdk-ruby, gems/aws-sdk-sqs/spec/client/verify_checksums_spec.rb: String, Binary and
# Number values, one with characters beyond ASCII (its UTF-8 bytes are digested).
RUBY_SDK: Attributes = {
    "ccc": string("test"),
    "aaa": binary(bytes([2, 3, 4])),
    "zzz": string("0230.01", "Number"),
    "öther_encodings": string("Tüst"),
}
# The same with custom type labels (`String.test`, `Binary.test`, `Number.test`).
RUBY_SDK_LABELLED: Attributes = {
    name: {**value, "DataType": value["DataType"] + ".test"} for name, value in RUBY_SDK.items()
}


@pytest.mark.parametrize(
    ("body", "digest"),
    [
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),  # aws-sdk-ruby
        ("test", "098f6bcd4621d373cade4e832627b4f6"),  # aws-sdk-go, checksums_test.go
        ("foo", "acbd18db4cc2f85cedef654fccc4a4d8"),  # aws-sdk-js, test/services/sqs.spec.js
        ("bar", "37b51d194a7513e45b56f6524f2d51f2"),  # aws-sdk-js
        ("Body", "ac101b32dda4448cf13a93fe283dddd8"),  # aws-sdk-java-v2
        ("derp", "58fd9edd83341c29f1aebba81c31e257"),  # moto, tests/test_sqs/test_sqs.py
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
    ],
)
def test_body_digests_are_the_sdks(body: str, digest: str) -> None:
    assert md5_of_body(body) == digest


def test_a_body_is_digested_as_utf8() -> None:
    assert md5_of_body("héllo 🐇") == hashlib.md5("héllo 🐇".encode()).hexdigest()


@pytest.mark.parametrize(
    ("attributes", "digest"),
    [
        (RUBY_SDK, "756d7f4338696745d063b420a2f7e502"),
        (RUBY_SDK_LABELLED, "5b7ef6c8a8d46001c7cdadaeea917aa4"),
        # moto's test_sqs.py (and LocalStack's, for the first).
        ({"timestamp": string("1493147359900", "Number")}, "235c5c510d26fb653d073faed50ae77c"),
        (
            {"SOME_Valid.attribute-Name": string("1493147359900", "Number")},
            "36655e7e9d7c0e8479fa3f3f42247ae7",
        ),
        (
            {"timestamp": string("1493147359900", "Number.java.lang.Long")},
            "2e2e4876d8e0bd6b8c2c8f556831c349",
        ),
        (
            {
                "id": string("2018fc74-4f77-1a5a-1be0-c2d037d5052b"),
                "contentType": string("application/json"),
                "timestamp": string("1602845432024", "Number.java.lang.Long"),
            },
            "b12289320bb6e494b18b645ef562b4a9",
        ),
        (
            {
                "id": string("453ae55e-f03b-21a6-a4b1-70c2e2e8fe71"),
                "mybin": binary(b"kekchebukek"),
                "timestamp": string("1603134247654", "Number.java.lang.Long"),
                "contentType": string("application/json"),
            },
            "049075255ebc53fb95f7f9f3cedf3c50",
        ),
    ],
)
def test_attribute_digests_are_the_sdks(attributes: Attributes, digest: str) -> None:
    assert md5_of_attributes(attributes) == digest


def test_attributes_are_digested_in_name_order_whatever_order_they_come_in() -> None:
    backwards = dict(reversed(list(RUBY_SDK.items())))
    assert md5_of_attributes(backwards) == md5_of_attributes(RUBY_SDK)


def test_no_attributes_have_no_digest() -> None:
    assert md5_of_attributes({}) is None


def test_system_attributes_are_digested_the_same_way() -> None:
    """AWSTraceHeader, laid out byte by byte: length and name, length and type, the
    String transport byte, length and value."""
    trace = "Root=1-5759e988-bd862e3f1be46a994272793"
    layout = (
        b"\x00\x00\x00\x0eAWSTraceHeader"
        + b"\x00\x00\x00\x06String"
        + b"\x01"
        + len(trace).to_bytes(4, "big")
        + trace.encode()
    )
    digest = md5_of_attributes({"AWSTraceHeader": string(trace)})
    assert digest == hashlib.md5(layout).hexdigest()


def test_custom_binary_types_take_the_binary_transport_byte() -> None:
    layout = b"\x00\x00\x00\x01b\x00\x00\x00\x0aBinary.png\x02\x00\x00\x00\x02\x00\xff"
    assert md5_of_attributes({"b": binary(b"\x00\xff", "Binary.png")}) == (
        hashlib.md5(layout).hexdigest()
    )
