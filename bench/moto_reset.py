"""A pytest plugin for moto's own SQS tests in server mode against a Burrow endpoint.

In server mode moto's `mock_aws` resets the server's state by `POST /moto-api/reset`,
which Burrow does not have (`moto_suite.py` turns those calls off with
MOTO_CALL_RESET_API=false). This plugin does the reset instead: before each test it
deletes every queue of the accounts moto's tests use, through the SQS API. moto's
`account_id` fixture asks STS for the caller's account; Burrow has no STS, so this
plugin answers it with the account Burrow gives moto's credentials. It runs in
bench/.moto-venv, from a copy `moto_suite.py` puts on that interpreter's path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

# The access key id of moto's mock credentials: its account with Burrow's --auth none.
ACCOUNT = "FOOBARKEY"


@pytest.fixture(autouse=True)
def burrow_reset() -> Iterator[None]:
    endpoint = os.environ["TEST_SERVER_MODE_ENDPOINT"]
    sqs = boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=ACCOUNT,
        aws_secret_access_key="reset",
    )
    for page in sqs.get_paginator("list_queues").paginate():
        for url in page.get("QueueUrls", []):
            sqs.delete_queue(QueueUrl=url)
    yield


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Any:
    """moto's `account_id` fixture: Burrow's account for moto's credentials, not STS's."""
    if fixturedef.argname != "account_id":
        return None
    # What pytest's own fixture setup records: (value, cache key, no exception).
    fixturedef.cached_result = (ACCOUNT, getattr(request, "param", None), None)
    return ACCOUNT
