"""boto3 SQS clients against a Burrow server, over either of SQS's wire protocols.

botocore 1.44.8 sends the JSON protocol. For the query protocol (form-encoded
`Action=…`, XML answers), which older SDKs send, a client is made from a copy of
botocore's own SQS model whose metadata says "query": botocore then serializes
every call that way and parses the XML answers. The copy also gets back the XML
names of SQS's query API, which the JSON model no longer carries (SQS API
reference, the query examples): answers wrapped in `<ActionResult>`, list elements
named for what they hold (`<Message>`, `<QueueUrl>`, `AttributeName.1`, not
`Messages.member.1`), maps of `Name`/`Value` (tags: `Key`/`Value`) under the
singular of their member (`Attribute.1.Name`, `MessageAttribute.1.Value.StringValue`).
"""

from __future__ import annotations

import functools
import json
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import httpx
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.loaders import Loader

# boto3 ships no type information; its clients are dynamic.
SqsClient = Any
REGION = "us-east-1"
API_VERSION = "2012-11-05"
PROTOCOLS = ("json", "query")
# One attempt: a 500 or a throttle must show, not be retried away. Reads outlast long polls.
CONFIG = Config(retries={"total_max_attempts": 1}, read_timeout=90, connect_timeout=10)
_creating = threading.Lock()  # (botocore sessions are not thread-safe)


@functools.cache
def _session(protocol: str) -> boto3.Session:
    core = botocore.session.get_session()
    if protocol == "query":
        core.register_component("data_loader", Loader(extra_search_paths=[str(_query_models())]))
    return boto3.Session(botocore_session=core)


def query_model() -> dict[str, Any]:
    """botocore's SQS model, switched to the query protocol with SQS's query names."""
    model: dict[str, Any] = Loader().load_service_model("sqs", "service-2", API_VERSION)
    model["metadata"] |= {"protocol": "query", "protocols": ["query"]}
    for operation in model["operations"].values():
        if "output" in operation:
            operation["output"]["resultWrapper"] = operation["output"]["shape"]
    shapes = model["shapes"]
    for name, shape in shapes.items():
        if shape["type"] == "list" and shape.get("flattened"):
            shape["member"]["locationName"] = name.removesuffix("List")
        elif shape["type"] == "map":
            key = "Key" if name == "TagMap" else "Name"
            shape["key"]["locationName"], shape["value"]["locationName"] = key, "Value"
        elif shape["type"] == "structure":
            for member_name, member in shape["members"].items():
                if shapes[member["shape"]]["type"] == "map":
                    member["locationName"] = member_name[0].upper() + member_name[1:-1]
    return model


def _query_models() -> Path:
    """A data directory holding `query_model()`, for botocore's loader."""
    model = query_model()
    directory = tempfile.TemporaryDirectory(prefix="sqs-query-model-")
    weakref.finalize(_query_models, directory.cleanup)
    path = Path(directory.name) / "sqs" / API_VERSION
    path.mkdir(parents=True)
    (path / "service-2.json").write_text(json.dumps(model))
    return Path(directory.name)


def sqs_client(
    endpoint: str, account: str, protocol: str = "json", validate: bool = True
) -> SqsClient:
    """A client whose access key id is `account` (with `--auth none`, the account).

    `validate=False` lets botocore send what its model would refuse (a missing
    required member, a number out of range) so that the server's answer shows.
    """
    config = CONFIG.merge(Config(parameter_validation=validate))
    with _creating:
        return _session(protocol).client(
            "sqs",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=account,
            aws_secret_access_key="unused-with-auth-none",
            config=config,
        )


def error_code(error: ClientError) -> str:
    """The error code botocore reads (SQS's query code, as the SDKs match it)."""
    code: str = error.response["Error"]["Code"]
    return code


def status_of(error: ClientError) -> int:
    status: int = error.response["ResponseMetadata"]["HTTPStatusCode"]
    return status


def queue_arn(sqs: SqsClient, url: str) -> str:
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    arn: str = found["Attributes"]["QueueArn"]
    return arn


def v1_messages(server_url: str, account: str, queue: str) -> list[dict[str, Any]]:
    """Every message of a queue as the v1.0 API lists it, hidden ones too (`hide`: the
    seconds each stays hidden)."""
    response = httpx.get(
        f"{server_url}/v1.0/{account}/{queue}",
        params={"match_hidden": "true", "detail": "all", "limit": 1000},
        timeout=10,
    )
    if response.status_code == 404:
        return []
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found
