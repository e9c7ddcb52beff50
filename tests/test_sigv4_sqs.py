"""SigV4 end to end: boto3 and signed raw requests against `burrow serve --auth keys:PATH`.

Every refused call gets the error an SDK gets from SQS for it, and writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.test_auth import add_key, sqs_credentials

REGION = "eu-central-1"
ONE_ATTEMPT = Config(retries={"total_max_attempts": 1})
SqsClient = Any  # (boto3's clients are dynamic)
Pair = tuple[str, str]  # access key id, secret access key


@dataclass(frozen=True)
class Secured:
    server: BurrowServer
    writer_a: Pair
    reader_a: Pair
    writer_b: Pair
    admin: Pair


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    workdir = tmp_path_factory.mktemp("sigv4-sqs")
    keyfile = workdir / "keys.json"
    tokens = [
        add_key(keyfile, "writer", "a"),
        add_key(keyfile, "reader", "a"),
        add_key(keyfile, "writer", "b"),
        add_key(keyfile, "admin"),
    ]
    server = BurrowServer(workdir, "memory://", "--auth", f"keys:{keyfile}").start()
    pairs = [sqs_credentials(keyfile, token) for token in tokens]  # (the server made the secret)
    yield Secured(server, *pairs)
    server.kill()


def client(server: BurrowServer, pair: Pair, endpoint: str = "") -> SqsClient:
    return boto3.client(
        "sqs",
        endpoint_url=server.url + endpoint,
        region_name=REGION,
        aws_access_key_id=pair[0],
        aws_secret_access_key=pair[1],
        config=ONE_ATTEMPT,
    )


def refusal(call: Any, **params: Any) -> tuple[str, int, str]:
    """The error code, status and message botocore raises for `call(**params)`."""
    with pytest.raises(ClientError) as raised:
        call(**params)
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


@contextlib.contextmanager
def signing_clock_behind(monkeypatch: pytest.MonkeyPatch, minutes: int) -> Iterator[None]:
    """botocore signs as if it were `minutes` earlier (a client whose clock is behind)."""
    real_now = botocore.auth.get_current_datetime

    def behind(*args: Any, **kwargs: Any) -> datetime.datetime:
        earlier: datetime.datetime = real_now(*args, **kwargs) - datetime.timedelta(minutes=minutes)
        return earlier

    with monkeypatch.context() as clock:
        clock.setattr(botocore.auth, "get_current_datetime", behind)
        yield


def messages_in(sqs: SqsClient, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(found[name]) for name in names)


def test_the_right_credentials_work_in_their_account(secured: Secured) -> None:
    server = secured.server
    writer = client(server, secured.writer_a)
    url = writer.create_queue(QueueName="right")["QueueUrl"]
    assert url == f"{server.url}/a/right"  # the key's account
    writer.send_message(QueueUrl=url, MessageBody="hello")
    received = writer.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in received] == ["hello"]
    reader = client(server, secured.reader_a)
    assert reader.list_queues(QueueNamePrefix="right")["QueueUrls"] == [url]
    assert messages_in(reader, url) == 1
    # An admin key has no account of its own: the endpoint names one.
    admin = client(server, secured.admin, "/b")
    assert admin.create_queue(QueueName="by-admin")["QueueUrl"] == f"{server.url}/b/by-admin"
    nowhere = refusal(client(server, secured.admin).list_queues)
    assert nowhere[:2] == ("MissingAuthenticationToken", 403)


def test_wrong_unknown_and_stale_credentials_get_what_sqs_answers(
    secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = secured.server
    writer = client(server, secured.writer_a)
    url = writer.create_queue(QueueName="refusals")["QueueUrl"]
    key_id, secret = secured.writer_a
    wrong_secret = client(server, (key_id, secret[:-1] + ("x" if secret[-1] != "x" else "y")))
    unknown_key = client(server, ("feedfacecafe", secret))
    stale = client(server, secured.writer_a)
    unsigned = boto3.client(
        "sqs",
        endpoint_url=server.url,
        region_name=REGION,
        config=ONE_ATTEMPT.merge(Config(signature_version=botocore.UNSIGNED)),
    )
    answers = {"unsigned": refusal(unsigned.send_message, QueueUrl=url, MessageBody="no")}
    for case, sqs in (("wrong secret", wrong_secret), ("unknown key", unknown_key)):
        answers[case] = refusal(sqs.send_message, QueueUrl=url, MessageBody="no")
        answers[case + ", no queue"] = refusal(sqs.create_queue, QueueName="ghost")
    with signing_clock_behind(monkeypatch, minutes=20):
        answers["signed 20 minutes ago"] = refusal(
            stale.send_message, QueueUrl=url, MessageBody="no"
        )
    assert {case: answer[:2] for case, answer in answers.items()} == {
        "unsigned": ("MissingAuthenticationToken", 403),
        "wrong secret": ("SignatureDoesNotMatch", 403),
        "wrong secret, no queue": ("SignatureDoesNotMatch", 403),
        "unknown key": ("InvalidClientTokenId", 403),
        "unknown key, no queue": ("InvalidClientTokenId", 403),
        "signed 20 minutes ago": ("SignatureDoesNotMatch", 403),
    }
    assert answers["signed 20 minutes ago"][2].startswith("Signature expired: ")
    assert answers["unknown key"][2] == "The security token included in the request is invalid."
    assert messages_in(writer, url) == 0
    assert "QueueUrls" not in writer.list_queues(QueueNamePrefix="ghost")
    # The exceptions botocore raises are the ones it raises for SQS's answers.
    with pytest.raises(ClientError, match=r"\(SignatureDoesNotMatch\) when calling"):
        wrong_secret.get_queue_url(QueueName="refusals")


def test_a_key_may_not_reach_beyond_its_account_or_role(secured: Secured) -> None:
    server = secured.server
    url_a = client(server, secured.writer_a).create_queue(QueueName="rights")["QueueUrl"]
    owner_b = client(server, secured.writer_b)
    url_b = owner_b.create_queue(QueueName="rights")["QueueUrl"]
    assert url_b == f"{server.url}/b/rights"
    writer_a = client(server, secured.writer_a)
    reader_a = client(server, secured.reader_a)
    answers = {
        "another account's queue": refusal(writer_a.send_message, QueueUrl=url_b, MessageBody="no"),
        "another account's purge": refusal(writer_a.purge_queue, QueueUrl=url_b),
        "a reader's send": refusal(reader_a.send_message, QueueUrl=url_a, MessageBody="no"),
        "a reader's receive": refusal(reader_a.receive_message, QueueUrl=url_a),
        "a reader's create": refusal(reader_a.create_queue, QueueName="by-reader"),
    }
    assert {case: answer[:2] for case, answer in answers.items()} == dict.fromkeys(
        answers, ("AccessDenied", 403)
    )
    with pytest.raises(ClientError, match=r"\(AccessDenied\)"):
        writer_a.get_queue_attributes(QueueUrl=url_b)
    assert messages_in(owner_b, url_b) == 0
    assert messages_in(writer_a, url_a) == 0
    assert "QueueUrls" not in writer_a.list_queues(QueueNamePrefix="by-reader")


def query_call(
    server: BurrowServer, pair: Pair, params: dict[str, str], presign_seconds: int = 0
) -> httpx.Response:
    """A query-protocol call (as older SDKs send), signed by botocore: a form POST with
    an Authorization header, or a presigned GET."""
    credentials = Credentials(*pair)
    if presign_seconds:
        request = AWSRequest("GET", server.url + "/", params=params)
        SigV4QueryAuth(credentials, "sqs", REGION, presign_seconds).add_auth(request)
    else:
        form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        request = AWSRequest("POST", server.url + "/", headers=form, data=params)
        SigV4Auth(credentials, "sqs", REGION).add_auth(request)
    prepared = request.prepare()
    return httpx.request(
        prepared.method, prepared.url, headers=dict(prepared.headers), content=prepared.body
    )


def test_the_query_protocol_and_presigned_urls_are_verified(
    secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = secured.server
    list_queues = {"Action": "ListQueues", "Version": "2012-11-05", "QueueNamePrefix": "qp"}
    signed = query_call(server, secured.writer_a, list_queues)
    assert signed.status_code == 200, signed.text
    assert "<ListQueuesResponse" in signed.text
    presigned = query_call(server, secured.writer_a, list_queues, presign_seconds=60)
    assert presigned.status_code == 200, presigned.text
    with signing_clock_behind(monkeypatch, minutes=2):
        expired = query_call(server, secured.writer_a, list_queues, presign_seconds=60)
    assert expired.status_code == 400
    assert "<Code>RequestExpired</Code>" in expired.text
    wrong = query_call(server, (secured.writer_a[0], "not the secret"), list_queues)
    assert wrong.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in wrong.text
    # A presigned URL signs its query and an empty body: nothing can be added to it.
    create = {"Action": "CreateQueue", "Version": "2012-11-05", "QueueName": "qp-signed"}
    url = httpx.URL(str(query_call(server, secured.writer_a, create, 60).request.url))
    stretched = httpx.request(
        "GET",
        url,
        content=b"Attribute.1.Name=DelaySeconds&Attribute.1.Value=900",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert stretched.status_code == 403, stretched.text
    assert "<Code>SignatureDoesNotMatch</Code>" in stretched.text
    malformed = httpx.post(
        server.url + "/",
        data=list_queues,
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x, Signature=y"},
    )
    assert malformed.status_code == 400
    assert "<Code>IncompleteSignature</Code>" in malformed.text
    writer = client(server, secured.writer_a)
    assert writer.list_queues(QueueNamePrefix="qp")["QueueUrls"] == [f"{server.url}/a/qp-signed"]


def test_failed_signatures_count_against_the_address(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    keyfile = tmp_path / "keys.json"
    token = add_key(keyfile, "writer", "a")
    config = tmp_path / "burrow.toml"
    config.write_text(
        "[limits]\nauth_failure_rate_per_address = 0.01\nauth_failure_burst_per_address = 3\n"
    )
    server = start_server("memory://", "--auth", f"keys:{keyfile}", "--config", str(config))
    right = sqs_credentials(keyfile, token)
    wrong = client(server, (right[0], "not the secret"))
    codes = [refusal(wrong.list_queues)[0] for _ in range(6)]
    assert "SignatureDoesNotMatch" in codes
    assert codes[-1] == "ThrottlingException", codes
    # Refused before its credentials are read: the right ones too, from that address.
    assert refusal(client(server, right).list_queues)[0] == "ThrottlingException"
