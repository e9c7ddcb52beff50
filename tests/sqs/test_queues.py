"""SQS's queue actions through boto3, on every backend: create, find, list, delete,
purge, attributes, tags, permissions, dead-letter sources."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.servers import BurrowServer
from tests.sqs.clients import REGION, SqsClient, error_code, queue_arn, sqs_client, status_of
from tests.sqs.messages import counts


def test_create_queue_answers_its_url_and_is_idempotent_with_equal_attributes(
    sqs: SqsClient, sqs_server: BurrowServer, sqs_account: str
) -> None:
    attributes = {"VisibilityTimeout": "45", "DelaySeconds": "2"}
    url = sqs.create_queue(QueueName="jobs", Attributes=attributes)["QueueUrl"]
    assert url == f"{sqs_server.url}/{sqs_account}/jobs"
    assert sqs.create_queue(QueueName="jobs", Attributes=attributes)["QueueUrl"] == url
    assert sqs.get_queue_url(QueueName="jobs")["QueueUrl"] == url


def test_create_queue_with_different_attributes_is_queue_name_exists(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    with pytest.raises(sqs.exceptions.QueueNameExists) as raised:
        sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "46"})
    assert error_code(raised.value) == "QueueAlreadyExists"
    assert status_of(raised.value) == 400
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert found["Attributes"] == {"VisibilityTimeout": "45"}


def test_create_queue_refuses_bad_names(sqs: SqsClient) -> None:
    for name in ["", "has space", "x" * 81, "dots.are.not.allowed", "slash/no"]:
        with pytest.raises(ClientError) as raised:
            sqs.create_queue(QueueName=name)
        assert error_code(raised.value) == "InvalidParameterValue", name
    assert "QueueUrls" not in sqs.list_queues()


def test_get_queue_url_of_an_unknown_queue_is_queue_does_not_exist(sqs: SqsClient) -> None:
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as raised:
        sqs.get_queue_url(QueueName="nothing-here")
    assert error_code(raised.value) == "AWS.SimpleQueueService.NonExistentQueue"
    assert status_of(raised.value) == 400


def test_list_queues_by_prefix_and_in_pages(sqs: SqsClient, sqs_server: BurrowServer) -> None:
    assert "QueueUrls" not in sqs.list_queues()
    names = [f"alpha-{n}" for n in range(5)] + ["beta-0"]
    urls = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in names}

    everything = sqs.list_queues()
    assert sorted(everything["QueueUrls"]) == sorted(urls.values())
    assert "NextToken" not in everything
    alphas = sqs.list_queues(QueueNamePrefix="alpha-")["QueueUrls"]
    assert sorted(alphas) == sorted(urls[n] for n in names[:5])
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="gamma")

    paged: list[str] = []
    page = sqs.list_queues(QueueNamePrefix="alpha-", MaxResults=2)
    while True:
        assert 1 <= len(page["QueueUrls"]) <= 2
        paged += page["QueueUrls"]
        if "NextToken" not in page:
            break
        page = sqs.list_queues(QueueNamePrefix="alpha-", MaxResults=2, NextToken=page["NextToken"])
    assert sorted(paged) == sorted(alphas)
    assert len(paged) == len(set(paged)) == 5


def test_list_queues_shows_only_the_callers_account(
    sqs: SqsClient, sqs_server: BurrowServer
) -> None:
    sqs.create_queue(QueueName="mine")
    other = sqs_client(sqs_server.url, f"other-{time.monotonic_ns()}")
    assert "QueueUrls" not in other.list_queues()


def test_delete_queue_deletes_it_and_its_messages(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="doomed")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="gone with it")
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="doomed")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=url, MessageBody="nowhere")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.delete_queue(QueueUrl=url)
    assert "QueueUrls" not in sqs.list_queues()


def test_purge_queue_deletes_the_messages_and_keeps_the_queue(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="full", Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
    for body in ["a", "b", "c"]:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.purge_queue(QueueUrl=url)
    assert counts(sqs, url) == (0, 0, 0)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert found["Attributes"] == {"VisibilityTimeout": "7"}
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.purge_queue(QueueUrl=url + "-not")


def test_purge_queue_deletes_in_flight_and_delayed_messages_too(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="busy")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="visible")
    sqs.send_message(QueueUrl=url, MessageBody="in flight")
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=600)
    assert len(sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"]) == 1
    assert counts(sqs, url) == (1, 1, 1)
    sqs.purge_queue(QueueUrl=url)
    assert counts(sqs, url) == (0, 0, 0)


def test_get_queue_attributes_all_and_each_name(sqs: SqsClient, sqs_account: str) -> None:
    before = int(time.time())
    url = sqs.create_queue(QueueName="attrs", Attributes={"MaximumMessageSize": "2048"})["QueueUrl"]
    after = int(time.time())
    sqs.send_message(QueueUrl=url, MessageBody="visible")
    sqs.send_message(QueueUrl=url, MessageBody="in flight")
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=600)
    assert len(sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"]) == 1

    every = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert every["QueueArn"] == f"arn:aws:sqs:{REGION}:{sqs_account}:attrs"
    assert every["ApproximateNumberOfMessages"] == "1"
    assert every["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert every["ApproximateNumberOfMessagesDelayed"] == "1"
    assert before <= int(every["CreatedTimestamp"]) <= after
    assert int(every["CreatedTimestamp"]) <= int(every["LastModifiedTimestamp"]) <= after
    # SQS's defaults, and the one given.
    assert every["VisibilityTimeout"] == "30"
    assert every["DelaySeconds"] == "0"
    assert every["MessageRetentionPeriod"] == "345600"
    assert every["ReceiveMessageWaitTimeSeconds"] == "0"
    assert every["MaximumMessageSize"] == "2048"
    for name, value in every.items():
        one = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"]
        assert one == {name: value}
    two = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "DelaySeconds"])
    assert two["Attributes"] == {"QueueArn": every["QueueArn"], "DelaySeconds": "0"}


def test_set_queue_attributes_changes_what_get_answers(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="settable")["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "VisibilityTimeout": "120",
            "DelaySeconds": "5",
            "MessageRetentionPeriod": "86400",
            "ReceiveMessageWaitTimeSeconds": "3",
            "MaximumMessageSize": "4096",
        },
    )
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert found["VisibilityTimeout"] == "120"
    assert found["DelaySeconds"] == "5"
    assert found["MessageRetentionPeriod"] == "86400"
    assert found["ReceiveMessageWaitTimeSeconds"] == "3"
    assert found["MaximumMessageSize"] == "4096"
    assert int(found["LastModifiedTimestamp"]) >= int(found["CreatedTimestamp"])


def test_bad_attribute_names_and_values_change_nothing(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="strict")["QueueUrl"]
    with pytest.raises(ClientError) as raised:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchAttribute"])
    assert error_code(raised.value) == "InvalidAttributeName"
    with pytest.raises(ClientError) as raised:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"NoSuchAttribute": "1"})
    assert error_code(raised.value) == "InvalidAttributeName"
    with pytest.raises(ClientError) as raised:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"QueueArn": "arn:aws:sqs:x:y:z"})
    assert error_code(raised.value) == "InvalidAttributeName"
    for name, value in [
        ("VisibilityTimeout", "43201"),
        ("VisibilityTimeout", "soon"),
        ("DelaySeconds", "901"),
        ("MessageRetentionPeriod", "59"),
        ("ReceiveMessageWaitTimeSeconds", "21"),
        ("MaximumMessageSize", "1023"),
        ("RedrivePolicy", "not json"),
    ]:
        with pytest.raises(ClientError) as raised:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "9", name: value})
        assert error_code(raised.value) == "InvalidAttributeValue", (name, value)
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert found["VisibilityTimeout"] == "30"
    assert found["DelaySeconds"] == "0"
    assert "RedrivePolicy" not in found
    with pytest.raises(ClientError) as raised:
        sqs.create_queue(QueueName="never", Attributes={"NoSuchAttribute": "1"})
    assert error_code(raised.value) == "InvalidAttributeName"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="never")


def test_tags_are_added_listed_and_removed(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="tagged", tags={"team": "blue"})["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "blue"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "test", "team": "green"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "green", "env": "test"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team", "not-there"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "test"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["env"])
    assert "Tags" not in sqs.list_queue_tags(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.list_queue_tags(QueueUrl=url + "-not")


def test_tagging_with_no_tags_or_no_keys_is_refused(sqs: SqsClient) -> None:
    url = sqs.create_queue(QueueName="tagged", tags={"team": "blue"})["QueueUrl"]
    with pytest.raises(ClientError) as raised:
        sqs.tag_queue(QueueUrl=url, Tags={})
    assert error_code(raised.value) == "MissingParameter"
    with pytest.raises(ClientError) as raised:
        sqs.untag_queue(QueueUrl=url, TagKeys=[])
    assert error_code(raised.value) == "InvalidParameterValue"
    with pytest.raises(ClientError) as raised:
        sqs.tag_queue(QueueUrl=url, Tags={f"key{n}": "v" for n in range(50)})
    assert error_code(raised.value) == "InvalidParameterValue"
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "blue"}


def policy_of(sqs: SqsClient, url: str) -> dict[str, Any] | None:
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
    text = found.get("Attributes", {}).get("Policy")
    return None if text is None else dict(json.loads(text))


def test_permissions_are_kept_in_the_policy_attribute(sqs: SqsClient, sqs_account: str) -> None:
    url = sqs.create_queue(QueueName="shared")["QueueUrl"]
    assert policy_of(sqs, url) is None
    sqs.add_permission(
        QueueUrl=url,
        Label="let-them-send",
        AWSAccountIds=["111122223333"],
        Actions=["SendMessage", "GetQueueUrl"],
    )
    sqs.add_permission(
        QueueUrl=url, Label="let-them-read", AWSAccountIds=["444455556666"], Actions=["*"]
    )
    policy = policy_of(sqs, url)
    assert policy is not None
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert set(statements) == {"let-them-send", "let-them-read"}
    sending = statements["let-them-send"]
    assert sending["Effect"] == "Allow"
    assert sorted(sending["Action"]) == ["SQS:GetQueueUrl", "SQS:SendMessage"]
    assert sending["Resource"] == queue_arn(sqs, url)
    assert "111122223333" in json.dumps(sending["Principal"])
    assert sqs_account not in json.dumps(statements["let-them-read"]["Principal"])

    with pytest.raises(ClientError) as raised:
        sqs.add_permission(
            QueueUrl=url, Label="let-them-send", AWSAccountIds=["1"], Actions=["SendMessage"]
        )
    assert error_code(raised.value) == "InvalidParameterValue"
    sqs.remove_permission(QueueUrl=url, Label="let-them-send")
    policy = policy_of(sqs, url)
    assert policy is not None
    assert [s["Sid"] for s in policy["Statement"]] == ["let-them-read"]
    with pytest.raises(ClientError) as raised:
        sqs.remove_permission(QueueUrl=url, Label="never-added")
    assert error_code(raised.value) == "InvalidParameterValue"
    sqs.remove_permission(QueueUrl=url, Label="let-them-read")
    remaining = policy_of(sqs, url)
    assert remaining is None or remaining["Statement"] == []


def test_list_dead_letter_source_queues(sqs: SqsClient) -> None:
    dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
    redrive = json.dumps({"deadLetterTargetArn": queue_arn(sqs, dead), "maxReceiveCount": 3})
    sources = [
        sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
        for name in ["source-1", "source-2"]
    ]
    sqs.create_queue(QueueName="unrelated")
    found = sqs.list_dead_letter_source_queues(QueueUrl=dead)
    assert sorted(found["queueUrls"]) == sorted(sources)
    first = sqs.list_dead_letter_source_queues(QueueUrl=dead, MaxResults=1)
    assert len(first["queueUrls"]) == 1
    rest = sqs.list_dead_letter_source_queues(
        QueueUrl=dead, MaxResults=1, NextToken=first["NextToken"]
    )
    assert sorted(first["queueUrls"] + rest["queueUrls"]) == sorted(sources)
    assert not sqs.list_dead_letter_source_queues(QueueUrl=sources[0]).get("queueUrls")
