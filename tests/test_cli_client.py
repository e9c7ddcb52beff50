"""The client commands of `burrow`, run in-process against a real server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import click
import orjson
import pytest
from click.testing import CliRunner, Result

from burrow.cli_client import register
from burrow.client import Client, Queue
from tests.conftest import ServerFactory

Run = Callable[..., Result]


@pytest.fixture(scope="module")
def burrow() -> click.Group:
    group = click.Group("burrow")
    register(group)
    return group


@pytest.fixture
def queue(server_url: str, account: str) -> Iterator[Queue]:
    with Client(server_url, account) as client:
        yield client.queue("q")


@pytest.fixture
def run(burrow: click.Group, server_url: str) -> Run:
    """Run `burrow ARGS…` with BURROW_URL pointing at the test server."""

    def invoke(*args: str, input: bytes | str | None = None, **env: str) -> Result:
        return CliRunner().invoke(burrow, args, input=input, env={"BURROW_URL": server_url, **env})

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def failed(result: Result, status: int = 1) -> str:
    assert result.exit_code == status, result.output
    assert result.stdout == ""
    return result.stderr


def test_put_from_option_and_stdin(run: Run, queue: Queue, account: str) -> None:
    assert (
        ok(run("put", account, "q", "given id", "--body", "hello", "--ttl", "30")) == "given id\n"
    )
    generated = ok(run("put", account, "q", "--hide", "100", input=b"\xff\x00")).strip()
    document = orjson.loads(ok(run("put", account, "q", "--json", input="text")))
    assert queue.get_one("given id").body == b"hello"
    assert 0 < queue.get_one("given id").ttl <= 30
    assert queue.get_one(generated).body == b"\xff\x00"
    assert queue.get_one(generated).hide > 0
    assert queue.get_one(document["id"]).body == b"text"


def test_put_from_stdin_strips_one_newline_unless_raw(run: Run, queue: Queue, account: str) -> None:
    cases = {"hi\n": b"hi", "two\n\n": b"two\n", "crlf\r\n": b"crlf", "none": b"none"}
    for piped, stored in cases.items():
        message_id = ok(run("put", account, "q", input=piped)).strip()
        assert queue.get_one(message_id).body == stored
    raw = ok(run("put", account, "q", "--raw", input="hi\n")).strip()
    assert queue.get_one(raw).body == b"hi\n"
    given = ok(run("put", account, "q", "--body", "as is\n")).strip()
    assert queue.get_one(given).body == b"as is\n"


def test_get_human_and_json(run: Run, queue: Queue, account: str) -> None:
    queue.put("tab\there\nnewline", id="t", ttl=0)
    queue.put(b"\x80\x81", id="b", ttl=0)
    queue.put("later", id="h", hide=100)
    assert ok(run("get", account, "q")) == (
        "t\tttl=0\thide=0\ttab\\there\\nnewline\nb\tttl=0\thide=0\t<2 bytes>\n"
    )
    assert orjson.loads(ok(run("get", account, "q", "--json", "--limit", "2"))) == [
        {"id": "t", "ttl": 0, "hide": 0, "body": "tab\there\nnewline"},
        {"id": "b", "ttl": 0, "hide": 0, "body": "gIE=", "base64": True},
    ]
    assert ok(run("get", account, "q", "--marker", "t")).startswith("b\t")
    assert ok(run("get", account, "q", "--match-hidden")).count("\n") == 3
    one = orjson.loads(ok(run("get", account, "q", "h", "--json")))
    assert (one["id"], one["body"]) == ("h", "later")


def test_get_errors(run: Run, account: str) -> None:
    assert "no messages matched" in failed(run("get", account, "q"))
    assert "not found" in failed(run("get", account, "q", "absent"))
    assert "limit must be" in failed(run("get", account, "q", "--limit", "1000000"))
    assert "--limit" in failed(run("get", account, "q", "--limit", "0"), status=2)
    assert "ID does not go" in failed(run("get", account, "q", "x", "--wait", "1"), status=2)


def test_claim_and_pop(run: Run, queue: Queue, account: str) -> None:
    queue.put_many(["1", "2", "3"])
    claimed = orjson.loads(ok(run("claim", account, "q", "--hide", "100", "--json")))
    assert [(m["body"], m["hide"] > 0) for m in claimed] == [("1", True)]
    popped = ok(run("pop", account, "q", "--limit", "5"))
    assert [line.split("\t")[3] for line in popped.splitlines()] == ["2", "3"]
    assert "no messages matched" in failed(run("pop", account, "q"))
    assert "no messages matched" in failed(run("claim", account, "q"))
    assert [m.body for m in queue.get(match_hidden=True)] == [b"1"]


def test_claim_waits_for_a_message(run: Run, queue: Queue, account: str) -> None:
    later = threading.Timer(0.2, queue.put, ["late"])
    later.start()
    try:
        assert ok(run("claim", account, "q", "--wait", "10")).endswith("\tlate\n")
    finally:
        later.join()


def test_delete_message_queue_account(run: Run, server_url: str, account: str) -> None:
    with Client(server_url, account) as client:
        client.queue("q").put_many(["1", "2"])
        client.queue("q").put("hidden", id="h", hide=100)
        client.queue("other").put("x")
        assert ok(run("delete", account, "q", "h")) == ""
        assert "not found" in failed(run("delete", account, "q", "h"))
        assert len(orjson.loads(ok(run("delete", account, "q", "--json")))) == 2
        assert "no messages matched" in failed(run("delete", account, "q"))
        client.queue("q").put("y", hide=100)
        assert orjson.loads(ok(run("delete", account, "--json"))) == ["other", "q"]
        assert client.queues() == []
        assert "no queues matched" in failed(run("delete", account))


def test_ls(run: Run, queue: Queue, account: str) -> None:
    queue.put("visible", id="v")
    queue.put("hidden", id="h", hide=100)
    assert account in ok(run("ls")).splitlines()
    assert account in orjson.loads(ok(run("ls", "--json")))
    assert ok(run("ls", account)) == "q\n"
    assert orjson.loads(ok(run("ls", account, "--json"))) == ["q"]
    assert [line.split("\t")[0] for line in ok(run("ls", account, "q")).splitlines()] == ["v", "h"]
    assert ok(run("ls", account, "q", "--marker", "v", "--limit", "1")).startswith("h\t")


def test_ls_of_nothing_says_so_and_succeeds(
    burrow: click.Group, start_server: ServerFactory, account: str
) -> None:
    empty = start_server()
    for args, what in [((), "accounts"), ((account,), "queues"), ((account, "q"), "messages")]:
        listed = CliRunner().invoke(burrow, ["ls", *args, "--server", empty.url])
        assert (listed.exit_code, listed.stdout, listed.stderr) == (0, "", f"no {what}\n")
        listed = CliRunner().invoke(burrow, ["ls", *args, "--json", "--server", empty.url])
        assert (listed.exit_code, listed.stdout, listed.stderr) == (0, "[]\n", "")


def test_watch_prints_existing_then_new(run: Run, queue: Queue, account: str) -> None:
    queue.put("first", id="1")
    later = threading.Timer(0.2, queue.put, ["second"], {"id": "2"})
    later.start()
    try:
        out = ok(run("watch", account, "q", "--count", "2", "--wait", "10"))
    finally:
        later.join()
    assert [line.split("\t")[3] for line in out.splitlines()] == ["first", "second"]
    assert len(queue.get()) == 2  # watching changes nothing


def test_watch_sse_prints_what_the_server_pushes(run: Run, queue: Queue, account: str) -> None:
    queue.put("first", id="1")
    queue.put("second", id="2")
    later = threading.Timer(0.2, queue.put, ["third"], {"id": "3"})
    later.start()
    try:
        out = ok(run("watch", account, "q", "--sse", "--marker", "1", "--count", "2"))
    finally:
        later.join()
    assert [line.split("\t")[3] for line in out.splitlines()] == ["second", "third"]
    assert "give --sse too" in failed(run("watch", account, "q", "--subscription", "s"), 2)
    assert "no subscription" in failed(run("watch", account, "q", "--sse", "--subscription", "s"))


def test_watch_json_lines_and_wait_zero(run: Run, queue: Queue, account: str) -> None:
    queue.put_many(["a", "b", "c"])
    out = ok(run("watch", account, "q", "--wait", "0", "--json"))
    assert [orjson.loads(line)["body"] for line in out.splitlines()] == ["a", "b", "c"]
    assert ok(run("watch", account + "-empty", "q", "--wait", "0")) == ""


def test_server_option_and_env(run: Run, server_url: str, queue: Queue, account: str) -> None:
    queue.put("x", id="x")
    assert ok(run("get", account, "q", "--server", server_url, BURROW_URL="http://bad")).startswith(
        "x\t"
    )
    assert "given twice" in failed(run("ls", "--server", f"{server_url},{server_url}"), status=2)
    assert "http(s)" in failed(run("ls", "--server", "localhost:8080"), status=2)
    assert f"root URL, {server_url}, not {server_url}/v1.0" in failed(
        run("put", account, "q", "--body", "x", "--server", f"{server_url}/v1.0"), status=2
    )
    assert "root URL" in failed(run("ls", BURROW_URL=f"{server_url}/?limit=1"), status=2)
    with Client(server_url) as anyone:  # nothing went into an account named "v1.0"
        assert "v1.0" not in anyone.accounts()
    assert [m.id for m in queue.get()] == ["x"]


def test_unreachable_server(run: Run) -> None:
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        assert "cannot reach" in failed(run("ls", BURROW_URL=url))


def test_commands_are_registered(burrow: click.Group) -> None:
    assert set(burrow.commands) == {
        *("put", "get", "claim", "pop", "delete", "ls", "watch", "stats", "subscribe")
    }


def test_subscribe_prints_the_subscription_and_the_secret_made(
    run: Run, queue: Queue, account: str
) -> None:
    queue.put("before", id="m1")
    printed = ok(run("subscribe", account, "q", "s", "--webhook", "http://127.0.0.1:9/h"))
    assert "name=s\tcursor=m1\turl=http://127.0.0.1:9/h\tsecret=whsec_" in printed
    again = orjson.loads(ok(run("subscribe", account, "q", "s", "--start", "oldest", "--json")))
    assert (again["cursor"], again["webhook"]) == ("m1", None)  # kept; no webhook now
    assert failed(run("subscribe", account, "q", "s", "--webhook", "ftp://x"))
