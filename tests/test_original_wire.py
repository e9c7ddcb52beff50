"""Burrow driven as the original (2011) Burrow client library drove a v1.0 server.

`OriginalClient` speaks HTTP as that client did (its `burrow/backend/http.py`),
reimplemented here from what it puts on the wire:
- the URL is `/v1.0`, the names as given (not percent-encoded), then the query:
  `ttl`, `hide`, then `marker`, `limit`, `match_hidden`, `detail`, `wait`, each
  value as Python prints it (`match_hidden=True`, `limit=2`), unencoded too;
- the headers are Host, `Accept-Encoding: identity` and, for a body that is not
  empty, Content-Length. With no body, 2011's httplib sent no Content-Length; later
  ones send `Content-Length: 0` on POST and PUT: both are tried. Never a Content-Type;
- a new connection for every request;
- a 2xx answer must carry a Content-Length: an empty one is nothing (a 201: True),
  a JSON list is its items, other JSON one item, anything else the raw body. 400 and
  404 are its two errors; any other status fails.
The calls are the client's backend calls, with the filters its callers and its
command-line tool pass (the tool sends `-l 2` as `limit=2` and `-A` as
`match_hidden=True` on every listing, accounts and queues included).
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from burrow.config import Limits
from tests.local_servers import server_on_each_local_backend
from tests.servers import BurrowServer

Options = Mapping[str, object]  # attributes or filters, as the original's callers gave them
ATTRIBUTE_ORDER = ("ttl", "hide")
FILTER_ORDER = ("marker", "limit", "match_hidden", "detail", "wait")
ITS_HEADERS = {"host", "accept-encoding", "content-length"}


class InvalidArguments(Exception):
    """The original client's error for a 400."""


class NotFound(Exception):
    """The original client's error for a 404."""


class OriginalClient:
    """The original client's backend calls, on the wire as it made them."""

    def __init__(self, base_url: str, *, length_on_empty: bool = False) -> None:
        self.base_url = base_url
        self.length_on_empty = length_on_empty  # as httplib since Python 2.7.4
        # No connection is kept: the original opened one for every request.
        self.http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=60)

    def __enter__(self) -> OriginalClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    def get_accounts(self, filters: Options | None = None) -> list[Any]:
        return self._items("GET", "", filters=filters)

    def delete_accounts(self, filters: Options | None = None) -> list[Any]:
        return self._items("DELETE", "", filters=filters)

    def get_queues(self, account: str, filters: Options | None = None) -> list[Any]:
        return self._items("GET", f"/{account}", filters=filters)

    def delete_queues(self, account: str, filters: Options | None = None) -> list[Any]:
        return self._items("DELETE", f"/{account}", filters=filters)

    def get_messages(self, account: str, queue: str, filters: Options | None = None) -> list[Any]:
        return self._items("GET", f"/{account}/{queue}", filters=filters)

    def delete_messages(
        self, account: str, queue: str, filters: Options | None = None
    ) -> list[Any]:
        return self._items("DELETE", f"/{account}/{queue}", filters=filters)

    def update_messages(
        self, account: str, queue: str, attributes: Options, filters: Options | None = None
    ) -> list[Any]:
        return self._items("POST", f"/{account}/{queue}", attributes, filters)

    def create_message(
        self, account: str, queue: str, message: str, body: bytes, attributes: Options | None = None
    ) -> Any:
        """True if created, False if replaced."""
        created = self._items("PUT", f"/{account}/{queue}/{message}", attributes, body=body)
        return created[0] if created else False

    def get_message(
        self, account: str, queue: str, message: str, filters: Options | None = None
    ) -> Any:
        return self._one("GET", f"/{account}/{queue}/{message}", None, filters)

    def delete_message(
        self, account: str, queue: str, message: str, filters: Options | None = None
    ) -> Any:
        return self._one("DELETE", f"/{account}/{queue}/{message}", None, filters)

    def update_message(
        self,
        account: str,
        queue: str,
        message: str,
        attributes: Options,
        filters: Options | None = None,
    ) -> Any:
        return self._one("POST", f"/{account}/{queue}/{message}", attributes, filters)

    def _one(
        self, method: str, path: str, attributes: Options | None, filters: Options | None
    ) -> Any:
        items = self._items(method, path, attributes, filters)
        return items[0] if items else None

    def _items(
        self,
        method: str,
        path: str,
        attributes: Options | None = None,
        filters: Options | None = None,
        body: bytes = b"",
    ) -> list[Any]:
        target = "/v1.0" + path + _query(attributes, filters)
        request = httpx.Request(
            method, self.base_url + target, headers={"Accept-Encoding": "identity"}, content=body
        )
        if not body and not (self.length_on_empty and method in ("POST", "PUT")):
            request.headers.pop("Content-Length", None)
        assert request.url.raw_path == target.encode(), "the URL must go out as the client built it"
        assert set(request.headers.keys()) <= ITS_HEADERS
        return _answer(self.http.send(request))


def _query(attributes: Options | None, filters: Options | None) -> str:
    pairs = [
        f"{name}={given[name]}"
        for names, given in ((ATTRIBUTE_ORDER, attributes), (FILTER_ORDER, filters))
        if given is not None
        for name in names
        if given.get(name) is not None
    ]
    return "?" + "&".join(pairs) if pairs else ""


def _answer(response: httpx.Response) -> list[Any]:
    status = response.status_code
    if 200 <= status < 300:
        if int(response.headers["content-length"]) == 0:
            return [True] if status == 201 else []
        if response.headers["content-type"][:16] == "application/json":
            value = json.loads(response.content)
            return value if isinstance(value, list) else [value]
        return [response.content]
    if status == 400:
        raise InvalidArguments(response.text)
    if status == 404:
        raise NotFound(response.text)
    raise AssertionError(f"the original client fails on a {status}: {response.text}")


server = server_on_each_local_backend()


@pytest.fixture
def client(server: BurrowServer) -> Iterator[OriginalClient]:
    """The client on the module's server; whatever a test leaves there is deleted after it."""
    with OriginalClient(server.url) as original:
        yield original
        with contextlib.suppress(NotFound):
            original.delete_accounts()


def test_match_hidden_as_python_prints_a_bool(client: OriginalClient) -> None:
    client.create_message("a", "q", "shown", b"1", {"ttl": 0})
    client.create_message("a", "q", "hidden", b"2", {"ttl": 0, "hide": 100})
    assert client.get_messages("a", "q", {"detail": "id"}) == ["shown"]
    assert client.get_messages("a", "q", {"match_hidden": False, "detail": "id"}) == ["shown"]
    both = client.get_messages("a", "q", {"match_hidden": True, "detail": "id"})
    assert both == ["shown", "hidden"]
    for spelling in ("true", "TRUE", "tRuE"):
        assert client.get_messages("a", "q", {"match_hidden": spelling, "detail": "id"}) == both
    with pytest.raises(InvalidArguments, match="match_hidden"):
        client.get_messages("a", "q", {"match_hidden": "yes"})  # v1.0 read "false" into that
    shown = client.update_messages("a", "q", {"hide": 0}, {"match_hidden": True, "detail": "all"})
    assert shown == [
        {"id": "shown", "ttl": 0, "hide": 0, "body": "1"},
        {"id": "hidden", "ttl": 0, "hide": 0, "body": "2"},
    ]
    assert client.update_messages("a", "q", {"hide": 100}, {"match_hidden": True}) == []
    with pytest.raises(NotFound):
        client.delete_messages("a", "q")  # all hidden now
    assert client.delete_messages("a", "q", {"match_hidden": True}) == []
    with pytest.raises(NotFound):
        client.get_messages("a", "q", {"match_hidden": True})


Level = tuple[
    Callable[[OriginalClient, str], None],  # put a message under this name
    Callable[[OriginalClient, Options | None], list[Any]],  # list the names
    Callable[[OriginalClient, Options | None], list[Any]],  # delete them
]
LEVELS: dict[str, Level] = {
    "accounts": (
        lambda c, name: c.create_message(name, "q", "m", b"x"),
        lambda c, filters: c.get_accounts(filters),
        lambda c, filters: c.delete_accounts(filters),
    ),
    "queues": (
        lambda c, name: c.create_message("a", name, "m", b"x"),
        lambda c, filters: c.get_queues("a", filters),
        lambda c, filters: c.delete_queues("a", filters),
    ),
}


@pytest.mark.parametrize("level", list(LEVELS))
def test_listing_and_deleting_names(client: OriginalClient, level: str) -> None:
    put, get, delete = LEVELS[level]
    for name in ("n1", "n2", "n3"):
        put(client, name)
    assert get(client, None) == ["n1", "n2", "n3"]
    assert get(client, {"detail": "all"}) == [{"id": "n1"}, {"id": "n2"}, {"id": "n3"}]
    assert get(client, {"detail": "none"}) == []
    assert get(client, {"marker": "n1", "limit": "1"}) == ["n2"]  # `burrow -m n1 -l 1`
    assert get(client, {"marker": "unknown", "match_hidden": True}) == ["n1", "n2", "n3"]  # -A
    assert get(client, {"wait": 1, "detail": "id"}) == ["n1", "n2", "n3"]
    with pytest.raises(NotFound):
        get(client, {"marker": "n3"})
    with pytest.raises(InvalidArguments):
        get(client, {"detail": "attributes"})
    assert delete(client, {"detail": "id", "limit": 1}) == ["n1"]
    assert delete(client, {"detail": "all", "marker": "n2"}) == [{"id": "n3"}]
    assert delete(client, None) == []
    with pytest.raises(NotFound):
        get(client, None)
    with pytest.raises(NotFound):
        delete(client, None)


def test_queue_calls_at_every_detail(client: OriginalClient) -> None:
    for name in ("m1", "m2", "m3"):
        client.create_message("a", "q", name, name.encode(), {"ttl": 0})
    everything = [{"id": name, "ttl": 0, "hide": 0, "body": name} for name in ("m1", "m2", "m3")]
    assert client.get_messages("a", "q") == everything
    first = client.get_messages("a", "q", {"detail": "attributes", "limit": 1})
    assert first == [{"id": "m1", "ttl": 0, "hide": 0}]
    assert client.get_messages("a", "q", {"detail": "body", "marker": "m1"}) == ["m2", "m3"]
    assert client.get_messages("a", "q", {"detail": "id", "marker": "m1", "limit": 1}) == ["m2"]
    assert client.get_messages("a", "q", {"detail": "none"}) == []
    assert client.get_messages("a", "q", {"marker": "unknown", "wait": 0}) == everything
    with pytest.raises(NotFound):
        client.get_messages("a", "q", {"marker": "m3"})
    with pytest.raises(InvalidArguments):
        client.get_messages("a", "q", {"detail": "bad"})
    claimed = client.update_messages(
        "a", "q", {"ttl": 100, "hide": 200}, {"detail": "all", "limit": 2}
    )
    assert claimed == [
        {"id": "m1", "ttl": 100, "hide": 200, "body": "m1"},
        {"id": "m2", "ttl": 100, "hide": 200, "body": "m2"},
    ]
    assert client.update_messages("a", "q", {}, {"detail": "id"}) == ["m3"]  # no attributes
    assert client.update_messages("a", "q", {"hide": 0}, {"match_hidden": True}) == []
    assert client.delete_messages("a", "q", {"detail": "body", "limit": 1}) == ["m1"]
    assert client.delete_messages("a", "q", {"detail": "id", "marker": "m2"}) == ["m3"]
    assert client.delete_messages("a", "q") == []
    with pytest.raises(NotFound):
        client.get_messages("a", "q", {"match_hidden": True})


def test_one_message_calls(client: OriginalClient) -> None:
    assert client.create_message("a", "q", "m", b"first", {"ttl": 0}) is True
    assert client.create_message("a", "q", "m", b"second", {"ttl": 0, "hide": 100}) is False
    message = client.get_message("a", "q", "m")  # hidden, and seen by its id
    assert (message["id"], message["ttl"], message["body"]) == ("m", 0, "second")
    assert 0 < message["hide"] <= 100
    assert client.get_message("a", "q", "m", {"detail": "body"}) == b"second"
    assert client.get_message("a", "q", "m", {"detail": "id"}) == b"m"
    assert client.get_message("a", "q", "m", {"detail": "attributes"}).keys() == {
        "id",
        "ttl",
        "hide",
    }
    assert client.get_message("a", "q", "m", {"detail": "none"}) is None
    with pytest.raises(InvalidArguments):
        client.get_message("a", "q", "m", {"detail": "bad"})
    # Filters a caller passes on along (the client sends whatever it is given).
    assert client.get_message("a", "q", "m", {"match_hidden": True, "detail": "body"}) == b"second"
    assert client.get_message("a", "q", "m", {"marker": "x", "limit": 1, "wait": 1}) is not None
    assert client.update_message("a", "q", "m", {"ttl": 0, "hide": 0}) is None
    shown = client.update_message(
        "a", "q", "m", {"hide": 0}, {"detail": "all", "match_hidden": True}
    )
    assert shown == {"id": "m", "ttl": 0, "hide": 0, "body": "second"}
    assert client.update_message("a", "q", "m", {}) is None
    assert client.delete_message("a", "q", "m", {"detail": "attributes"}) == {
        "id": "m",
        "ttl": 0,
        "hide": 0,
    }
    with pytest.raises(NotFound):
        client.delete_message("a", "q", "m")


@pytest.mark.parametrize("length_on_empty", [False, True], ids=["httplib-2011", "later-httplib"])
def test_requests_without_a_body(client: OriginalClient, length_on_empty: bool) -> None:
    with OriginalClient(client.base_url, length_on_empty=length_on_empty) as shaped:
        assert shaped.create_message("a", "q", "empty", b"", {"ttl": 0}) is True
        assert shaped.get_message("a", "q", "empty", {"detail": "body"}) is None  # nothing
        everything = shaped.get_message("a", "q", "empty")
        assert everything == {"id": "empty", "ttl": 0, "hide": 0, "body": ""}
        assert shaped.update_messages("a", "q", {"hide": 100}, {"detail": "id"}) == ["empty"]
        assert shaped.update_message("a", "q", "empty", {"hide": 0}, {"detail": "id"}) == b"empty"
        assert shaped.create_message("a", "q", "empty", b"", {"ttl": 0}) is False


def test_waiting_for_a_message(client: OriginalClient) -> None:
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.get_messages, "a", "q", {"wait": 30, "detail": "body"})
        client.create_message("a", "q", "m", b"late")
        assert waiting.result(timeout=60) == ["late"]
    client.create_message("a", "q2", "h", b"was hidden", {"hide": 100})
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.get_messages, "a", "q2", {"wait": 30, "detail": "body"})
        client.update_messages("a", "q2", {"hide": 0}, {"match_hidden": True})
        assert waiting.result(timeout=60) == ["was hidden"]


@pytest.mark.parametrize(
    "name", ["a:b", "x+y", "user@host", "~me", "(1)", "a,b;c=d", "it's", "*!$"]
)
def test_names_go_into_the_url_as_they_are(client: OriginalClient, name: str) -> None:
    assert client.create_message(name, name, name, b"x") is True
    assert client.get_accounts() == [name]
    assert client.get_queues(name) == [name]
    assert client.get_messages(name, name, {"detail": "id"}) == [name]
    assert client.get_message(name, name, name, {"detail": "id"}) == name.encode()
    assert client.delete_message(name, name, name, {"detail": "id"}) == name.encode()


def test_deleting_a_queue_still_empties_it_past_the_default_page(client: OriginalClient) -> None:
    count = Limits().default_limit + 20
    for i in range(count):
        client.create_message("a", "q", f"m{i:04}", b"x")
    assert len(client.get_messages("a", "q", {"detail": "id"})) == Limits().default_limit
    assert client.delete_messages("a", "q") == []  # v1.0's "delete this queue": all of it
    with pytest.raises(NotFound):
        client.get_messages("a", "q", {"match_hidden": True})


def test_names_outside_ascii_must_be_percent_encoded(client: OriginalClient) -> None:
    """The original client put such names into the URL as raw UTF-8; HTTP request lines
    are ASCII, and Burrow's HTTP layer refuses them (a documented difference)."""
    url = httpx.URL(client.base_url)
    raw = b"PUT /v1.0/caf\xc3\xa9/q/m HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"
    with socket.create_connection((url.host, url.port), timeout=30) as connection:
        connection.sendall(raw)
        answer = b""
        while chunk := connection.recv(4096):  # until the server closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert client.create_message("caf%C3%A9", "q", "m", b"x") is True
    assert client.get_accounts() == ["café"]
