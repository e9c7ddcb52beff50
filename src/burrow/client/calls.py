"""Every client operation as a `Call`, built once here and sent by either client.

The module-level functions mirror `burrow.backends.base.Backend` (the account is
an argument, nothing found raises `NoMatch` / `MessageNotFound`), so that an
`http` backend is a thin adapter. `AccountCalls` and `QueueCalls` are the
friendlier operations behind `Client` and `Queue`: listings answer `[]` where
nothing matched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import httpx

from burrow.client.wire import (
    FULL,
    JSON,
    OCTETS,
    Call,
    Request,
    as_bytes,
    json_body,
    params,
    path,
    raiser,
    read_json,
    read_message,
    read_messages,
    read_names,
    read_nothing,
)
from burrow.codec import body_fields, info_tag, to_base64
from burrow.errors import MessageNotFound, NoMatch, NotFound
from burrow.model import (
    ALL_ITEMS,
    NO_QUOTA,
    Attributes,
    Detail,
    Draft,
    Filters,
    Message,
    MessageCounts,
    NewMessage,
    Quota,
)

T = TypeVar("T")

NAME_DETAILS = (Detail.NONE, Detail.ID, Detail.ALL)
MESSAGE_DETAILS = (Detail.NONE, Detail.ATTRIBUTES, Detail.ALL, FULL)
"""Details a call returning `Message` objects can ask for (`none` returns `[]`)."""

Body = bytes | str
"""A message body as given to the client: text is sent as UTF-8."""

_no_path = raiser(lambda: NotFound("no such path on the server"))


def or_empty(call: Call[list[T]]) -> Call[list[T]]:
    """The same call, answering `[]` instead of raising where nothing matched."""
    return Call(call.request, call.decode, list)


# Mirrors of the Backend operations -------------------------------------------------------
# (Messages come back at `detail=full`, an extension: all that a backend reports of them.)


def get_accounts(filters: Filters = ALL_ITEMS, detail: Detail = Detail.ID) -> Call[list[str]]:
    """Names of the accounts holding messages."""
    return _names("GET", path(), filters, detail, "accounts")


def delete_accounts(filters: Filters = ALL_ITEMS, detail: Detail = Detail.ID) -> Call[list[str]]:
    """Delete every message (hidden ones too) of the matched accounts; their names."""
    return _names("DELETE", path(), filters, detail, "accounts")


def get_queues(
    account: str, filters: Filters = ALL_ITEMS, detail: Detail = Detail.ID
) -> Call[list[str]]:
    """Names of the account's queues holding messages."""
    return _names("GET", path(account), filters, detail, "queues")


def delete_queues(
    account: str, filters: Filters = ALL_ITEMS, detail: Detail = Detail.ID
) -> Call[list[str]]:
    """Delete every message (hidden ones too) of the matched queues; their names."""
    return _names("DELETE", path(account), filters, detail, "queues")


def get_messages(
    account: str,
    queue: str,
    filters: Filters = ALL_ITEMS,
    *,
    wait: int = 0,
    detail: str = FULL,
) -> Call[list[Message]]:
    """Matched messages, oldest first; `wait` long polls for a first match."""
    return _messages("GET", account, queue, filters, None, wait, detail)


def update_messages(
    account: str,
    queue: str,
    attributes: Attributes,
    filters: Filters = ALL_ITEMS,
    *,
    wait: int = 0,
    detail: str = FULL,
) -> Call[list[Message]]:
    """Set the given attributes on the matched messages; returns them updated.

    With `hide` this is a claim: concurrent claims never share a message; with
    `attributes.receipt`, a receive.
    """
    return _messages("POST", account, queue, filters, attributes, wait, detail)


def delete_messages(
    account: str,
    queue: str,
    filters: Filters = ALL_ITEMS,
    *,
    wait: int = 0,
    detail: str = FULL,
) -> Call[list[Message]]:
    """Delete the matched messages; returns what was deleted (a pop)."""
    return _messages("DELETE", account, queue, filters, None, wait, detail)


def put_messages(
    account: str, queue: str, messages: list[NewMessage], quota: Quota = NO_QUOTA
) -> Call[list[bool]]:
    """Create or replace; True where a message was created.

    One message goes by a plain PUT, whose status tells created (201) from
    replaced (204); a batch asks for `detail=all`, which says it of each. So does
    one message with meta, which a batch carries whatever its size (the PUT's
    `meta` parameter is bound by the length of a URL). The server applies `quota`
    where it is stricter than its own.
    """
    caps = _quota_params(quota)
    if len(messages) == 1 and not messages[0].meta:
        (one,) = messages
        request = _put_one(account, queue, one.id, one.body, Attributes(one.ttl, one.hide))
        request.params.update(caps)
        return Call(request, lambda response: [response.status_code == 201], _no_path)
    drafts = [Draft(m.body, m.id, m.ttl, m.hide, m.meta) for m in messages]
    request = _put_batch(account, queue, drafts)
    request.params.update(caps, detail=Detail.ALL.value)
    return Call(
        request, lambda response: [item["created"] for item in read_json(response)], _no_path
    )


def sign(path: str, methods: list[str], seconds: int) -> Call[str]:
    """A signed URL (`POST /sign`) allowing `methods` below `path` for `seconds`, within
    the caller's token's rights: the path and query, relative to the server."""
    order = {"path": path, "methods": methods, "expires": seconds}
    request = Request("POST", "/sign", content=json_body(order), content_type=JSON)
    return Call(request, lambda response: str(read_json(response)["url"]), _no_path)


def get_message(account: str, queue: str, message_id: str) -> Call[Message]:
    """One message by id, hidden or not."""
    return _one("GET", account, queue, message_id, None, FULL, read_message)


def update_message(
    account: str,
    queue: str,
    message_id: str,
    attributes: Attributes,
    receipt: str | None = None,
) -> Call[Message]:
    """Set the given attributes on one message (with `receipt`: only on that receive
    of it); returns it updated."""
    return _one("POST", account, queue, message_id, attributes, FULL, read_message, receipt)


def delete_message(
    account: str, queue: str, message_id: str, receipt: str | None = None
) -> Call[Message]:
    """Delete one message (with `receipt`: only while that receive is its latest);
    returns it as it was."""
    return _one("DELETE", account, queue, message_id, None, FULL, read_message, receipt)


def delete_listed_messages(
    account: str, queue: str, targets: list[tuple[str, str | None]]
) -> Call[list[Message]]:
    """Delete messages by id, each with the receipt of its latest receive or None
    (`POST …/-/delete`); returns those deleted, in the order given."""
    entries = [i if receipt is None else {"id": i, "receipt": receipt} for i, receipt in targets]
    request = Request(
        "POST", _resource(account, queue, "delete"), {"detail": FULL}, json_body(entries), JSON
    )
    return Call(request, read_messages, _no_path)


def count_messages(account: str, queue: str) -> Call[MessageCounts]:
    """How many messages the queue holds, by state."""
    return Call(Request("GET", _resource(account, queue, "counts")), _read_counts, _no_path)


def get_stats(*names: str) -> Call[dict[str, Any]]:
    """Stats (`detail=stats`, an extension), by the path `names` give: every account's
    summed (none given), each of an account's queues' (its name), or one queue's."""
    request = Request("GET", path(*names), {"detail": "stats"})
    return Call(request, read_json, _no_path)


def get_queue_info(account: str, queue: str) -> Call[bytes | None]:
    """The queue's info document, None if it has none."""
    request = Request("GET", _resource(account, queue, "info"))
    return Call(request, lambda response: response.content, lambda: None)


def set_queue_info(account: str, queue: str, info: bytes, expected: bytes | None) -> Call[bool]:
    """Store `info` only if the queue's info is `expected` (None: it has none); True if
    stored. `If-Match` names `expected` by its tag."""
    request = Request(
        "PUT",
        _resource(account, queue, "info"),
        content=info,
        content_type=OCTETS,
        headers={} if expected is None else {"If-Match": info_tag(expected)},
    )
    return _CompareAndSet(request, lambda _: True, _no_path)


def delete_queue_info(account: str, queue: str) -> Call[bool]:
    """Forget the queue's info; True if it had one."""
    request = Request("DELETE", _resource(account, queue, "info"))
    return Call(request, lambda _: True, lambda: False)


def list_queue_infos(account: str, filters: Filters = ALL_ITEMS) -> Call[list[str]]:
    """Names of the account's queues that have info, in the order of their first."""
    call = _names("GET", path(account), filters, Detail.ID, "queues")
    call.request.params["info"] = "true"
    return call


def get_subscription(account: str, queue: str, name: str) -> Call[bytes | None]:
    """The subscription's stored document (an admin's call: it holds the webhook's
    secret), None if there is no such subscription."""
    request = Request("GET", _subscription(account, queue, name), {"document": "true"})
    return Call(request, lambda response: response.content, lambda: None)


def set_subscription(
    account: str, queue: str, name: str, document: bytes, expected: bytes | None
) -> Call[bool]:
    """Store the subscription's document only if the stored one is `expected` (None: there
    is none); True if stored. An admin's call, as `get_subscription`."""
    request = Request(
        "PUT",
        _subscription(account, queue, name),
        {"document": "true"},
        document,
        OCTETS,
        headers={} if expected is None else {"If-Match": info_tag(expected)},
    )
    return _CompareAndSet(request, lambda _: True, _no_path)


def delete_subscription(account: str, queue: str, name: str) -> Call[bool]:
    """Forget the subscription; True if there was one."""
    request = Request("DELETE", _subscription(account, queue, name))
    return Call(request, lambda _: True, lambda: False)


def list_subscriptions(account: str, queue: str, filters: Filters = ALL_ITEMS) -> Call[list[str]]:
    """Names of the queue's subscriptions, in name order."""
    return _names(
        "GET", _resource(account, queue, "subscriptions"), filters, Detail.ID, "subscriptions"
    )


def list_all_subscriptions(after: tuple[str, str, str] | None) -> Call[list[tuple[str, str, str]]]:
    """The first page (the server's `default_limit`) of every subscription of the server's
    store as (account, queue, name), in order, strictly after `after` (an admin's call);
    [] at the end."""
    query = {"subscriptions": "true"}
    if after is not None:
        query["marker"] = "/".join(after)
    return Call(Request("GET", path(), query), _read_keys, list)


def _read_keys(response: httpx.Response) -> list[tuple[str, str, str]]:
    """`ACCOUNT/QUEUE/NAME` each (ids hold no `/`)."""
    return [(account, queue, name) for account, queue, name in map(_split, read_json(response))]


def _split(key: str) -> list[str]:
    return key.split("/")


class _CompareAndSet(Call[bool]):
    """A compare-and-set, whose 409 means "not stored" (False), not an error."""

    __slots__ = ()

    def result(self, response: httpx.Response) -> bool:
        if response.status_code == 409:
            return False
        return super().result(response)


# Friendlier operations of one account and one queue -----------------------------------------


@dataclass(frozen=True, slots=True)
class AccountCalls:
    """The operations behind `Client` / `AsyncClient`."""

    account: str | None

    @property
    def name(self) -> str:
        if self.account is None:
            raise ValueError("this client was made without an account")
        return self.account

    def accounts(self, limit: int | None, marker: str | None) -> Call[list[str]]:
        return or_empty(get_accounts(Filters(limit, marker)))

    def queues(self, limit: int | None, marker: str | None) -> Call[list[str]]:
        return or_empty(get_queues(self.name, Filters(limit, marker)))

    def delete(self) -> Call[list[str]]:
        return or_empty(delete_queues(self.name))


@dataclass(frozen=True, slots=True)
class QueueCalls:
    """The operations behind `Queue` / `AsyncQueue`."""

    account: str
    name: str

    def put(self, body: Body, id: str | None, ttl: int | None, hide: int | None) -> Call[str]:
        if id is None:
            request = _put_batch(self.account, self.name, [Draft(as_bytes(body), None, ttl, hide)])
            return Call(request, lambda response: str(read_json(response)[0]), _no_path)
        request = _put_one(self.account, self.name, id, as_bytes(body), Attributes(ttl, hide))
        return Call(request, lambda _: id, _no_path)

    def put_many(self, items: Iterable[Body | Draft]) -> Call[list[str]]:
        request = _put_batch(self.account, self.name, [as_draft(item) for item in items])
        return Call(request, lambda response: [str(i) for i in read_json(response)], _no_path)

    def get(
        self, limit: int | None, marker: str | None, match_hidden: bool, wait: int
    ) -> Call[list[Message]]:
        filters = Filters(limit, marker, match_hidden)
        call = get_messages(self.account, self.name, filters, wait=wait, detail=Detail.ALL)
        return or_empty(call)

    def probe(self, marker: str | None, match_hidden: bool, wait: int) -> Call[bool]:
        """Whether a message matches (long polling up to `wait`), without reading it."""
        filters = Filters(1, marker, match_hidden)
        call = get_messages(self.account, self.name, filters, wait=wait, detail=Detail.NONE)
        return Call(call.request, lambda _: True, lambda: False)

    def get_one(self, message_id: str) -> Call[Message]:
        return _one("GET", self.account, self.name, message_id, None, Detail.ALL, read_message)

    def claim(self, limit: int, hide: int, wait: int) -> Call[list[Message]]:
        claim = Attributes(hide=hide)
        return or_empty(
            update_messages(
                self.account, self.name, claim, Filters(limit), wait=wait, detail=Detail.ALL
            )
        )

    def pop(self, limit: int, wait: int) -> Call[list[Message]]:
        call = delete_messages(
            self.account, self.name, Filters(limit), wait=wait, detail=Detail.ALL
        )
        return or_empty(call)

    def update(self, message_id: str, ttl: int | None, hide: int | None) -> Call[Message]:
        attributes = Attributes(ttl, hide)
        return _one(
            "POST", self.account, self.name, message_id, attributes, Detail.ALL, read_message
        )

    def delete(self, message_id: str) -> Call[None]:
        return _one("DELETE", self.account, self.name, message_id, None, Detail.NONE, read_nothing)

    def delete_many(self, message_ids: list[str]) -> Call[list[str]]:
        """Delete by id in one request (`POST …/-/delete`); the ids deleted."""
        request = Request(
            "POST",
            _resource(self.account, self.name, "delete"),
            {"detail": Detail.ID},
            json_body(message_ids),
            JSON,
        )
        return Call(request, read_names, _no_path)

    def delete_all(self) -> Call[list[str]]:
        everything = Filters(match_hidden=True)
        request = Request(
            "DELETE", path(self.account, self.name), params(everything, detail=Detail.ID)
        )
        return Call(request, read_names, list)

    # Subscriptions (docs/push.md): on the first server, with several.

    def subscribe(
        self, name: str, start: str, webhook: dict[str, Any] | None
    ) -> Call[dict[str, Any]]:
        order: dict[str, Any] = {"start": start, "webhook": webhook}
        request = Request(
            "PUT", self._subscription(name), content=json_body(order), content_type=JSON
        )
        return Call(request, read_json, _no_path)

    def read(self, name: str, limit: int | None, wait: int) -> Call[list[Message]]:
        call = get_messages(self.account, self.name, Filters(limit), wait=wait, detail=Detail.ALL)
        call.request.params["subscription"] = name
        return or_empty(call)

    def ack(self, name: str, message_id: str) -> Call[None]:
        request = Request("POST", self._subscription(name), {"ack": message_id})
        return Call(request, read_nothing, raiser(lambda: NotFound(f"no subscription {name!r}")))

    def _subscription(self, name: str) -> str:
        return _subscription(self.account, self.name, name)


def as_draft(item: Body | Draft) -> Draft:
    """A batch item as a `Draft` (a bare body gets no id or attributes)."""
    return item if isinstance(item, Draft) else Draft(as_bytes(item))


# Building blocks ---------------------------------------------------------------------------


def _names(method: str, where: str, filters: Filters, detail: Detail, what: str) -> Call[list[str]]:
    _check_detail(detail, NAME_DETAILS)
    names_only = Filters(filters.limit, filters.marker)  # match_hidden is for messages
    request = Request(method, where, params(names_only, detail=detail))
    return Call(request, read_names, raiser(lambda: NoMatch(what)))


def _messages(
    method: str,
    account: str,
    queue: str,
    filters: Filters,
    attributes: Attributes | None,
    wait: int,
    detail: str,
) -> Call[list[Message]]:
    _check_detail(detail, MESSAGE_DETAILS)
    query = params(filters, attributes, detail=detail, wait=wait)
    return Call(
        Request(method, path(account, queue), query, wait=wait), read_messages, raiser(NoMatch)
    )


def _one(
    method: str,
    account: str,
    queue: str,
    message_id: str,
    attributes: Attributes | None,
    detail: str,
    decode: Callable[[httpx.Response], T],
    receipt: str | None = None,
) -> Call[T]:
    query = params(None, attributes, detail=detail)
    if receipt is not None:
        query["receipt"] = receipt
    request = Request(method, path(account, queue, message_id), query)
    return Call(request, decode, raiser(lambda: MessageNotFound(message_id)))


def _resource(account: str, queue: str, resource: str) -> str:
    """The path of one of a queue's extension resources, `/v1.0/{a}/{q}/-/{resource}`."""
    return f"{path(account, queue)}/-/{resource}"


def _subscription(account: str, queue: str, name: str) -> str:
    return path(account, queue, "-", "subscriptions", name)


def _read_counts(response: httpx.Response) -> MessageCounts:
    counts = read_json(response)
    return MessageCounts(
        int(counts["visible"]),
        int(counts["in_flight"]),
        int(counts["delayed"]),
        # (a server from before these were counted leaves them out)
        int(counts.get("bytes", 0)),
        float(counts.get("oldest", 0.0)),
        float(counts.get("newest", 0.0)),
    )


def _put_one(
    account: str, queue: str, message_id: str, body: bytes, attributes: Attributes
) -> Request:
    where = path(account, queue, message_id)
    return Request("PUT", where, params(None, attributes), body, OCTETS)


def _put_batch(account: str, queue: str, drafts: list[Draft]) -> Request:
    items = [_draft_json(draft) for draft in drafts]
    return Request("PUT", path(account, queue), {}, json_body(items), JSON)


def _draft_json(draft: Draft) -> dict[str, Any]:
    item = body_fields(draft.body)
    extra = {"id": draft.id, "ttl": draft.ttl, "hide": draft.hide}
    item.update({key: value for key, value in extra.items() if value is not None})
    if draft.meta:
        item["meta"] = to_base64(draft.meta)
    return item


def _quota_params(quota: Quota) -> dict[str, str]:
    return {name: str(cap) for name, cap in asdict(quota).items() if cap}


def _check_detail(detail: str, allowed: tuple[str, ...]) -> None:
    if detail not in allowed:
        raise ValueError(f"detail must be one of {', '.join(allowed)} here, not {detail}")
