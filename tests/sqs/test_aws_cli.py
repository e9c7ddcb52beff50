"""The `aws` command (awscli from PyPI, in the dev extra, on the same botocore as boto3)
against a live server: create a queue, send with attributes, receive, delete."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.servers import BurrowServer
from tests.sqs.conftest import frontend_only
from tests.sqs.digests import attributes_digest, body_digest

# The venv's own `aws` first (as `pip install awscli` puts it), else one on the PATH.
AWS = shutil.which("aws", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


@frontend_only
def test_the_aws_cli_creates_sends_receives_and_deletes(
    sqs_server: BurrowServer, sqs_account: str, tmp_path: Path
) -> None:
    assert AWS is not None, "the aws command is missing: make test installs awscli"
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),  # no one's ~/.aws
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_ACCESS_KEY_ID": sqs_account,
        "AWS_SECRET_ACCESS_KEY": "unused-with-auth-none",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }

    def aws(*arguments: str) -> dict[str, Any]:
        run = subprocess.run(
            [AWS, "--endpoint-url", sqs_server.url, "--output", "json", "sqs", *arguments],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, f"aws sqs {arguments[0]}: {run.stderr}"
        answer: dict[str, Any] = json.loads(run.stdout) if run.stdout.strip() else {}
        return answer

    url = aws("create-queue", "--queue-name", "cli")["QueueUrl"]
    assert url == f"{sqs_server.url}/{sqs_account}/cli"
    attributes = {
        "colour": {"DataType": "String", "StringValue": "blue"},
        "count": {"DataType": "Number", "StringValue": "7"},
    }
    sent = aws(
        "send-message",
        "--queue-url",
        url,
        "--message-body",
        "from the command line",
        "--message-attributes",
        json.dumps(attributes),
    )
    assert sent["MD5OfMessageBody"] == body_digest("from the command line")
    assert sent["MD5OfMessageAttributes"] == attributes_digest(attributes)

    answer = aws(
        "receive-message",
        "--queue-url",
        url,
        "--wait-time-seconds",
        "10",
        "--message-attribute-names",
        "All",
        "--attribute-names",
        "ApproximateReceiveCount",
    )
    [message] = answer["Messages"]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "from the command line"
    assert message["MessageAttributes"] == attributes
    assert message["Attributes"] == {"ApproximateReceiveCount": "1"}

    aws("delete-message", "--queue-url", url, "--receipt-handle", message["ReceiptHandle"])
    found = aws(
        "get-queue-attributes",
        "--queue-url",
        url,
        "--attribute-names",
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
    )
    assert found["Attributes"] == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
