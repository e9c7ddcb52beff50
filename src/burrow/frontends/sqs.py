"""The SQS-compatible frontend: AWS SDK and CLI programs work against Burrow unchanged.

Served on the v1.0 API's port. A request is SQS's when it is a POST carrying
`X-Amz-Target: AmazonSQS.<Action>` (the JSON protocol) or a form body (the query
protocol, also as a GET with `Action=` in the query string). Each goes through the same
admission as a v1.0 request (`Service.admit`: rate limits, credentials, then the
account's limits), on the account of the queue it names, else the caller's own, and
reaches storage only through the service. docs/sqs.md lists the actions and what
differs from SQS.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from burrow.audit import escaped
from burrow.auth import Credentials, Guard, OpenAccess, Request
from burrow.errors import BurrowError
from burrow.frontends import sqs_messages, sqs_moves, sqs_queues
from burrow.frontends.asgi import Receive, Response, Scope, client_address, read_body
from burrow.frontends.sqs_addresses import DEFAULT_REGION, Origin, parse_arn, parse_queue_url
from burrow.frontends.sqs_call import Call
from burrow.frontends.sqs_errors import SqsError, from_burrow
from burrow.frontends.sqs_protocol import Protocol, SqsCall, decode, encode, encode_error
from burrow.frontends.sqs_queue_info import QueueInfos
from burrow.metrics_recorder import ROUTE
from burrow.service import Service
from burrow.sigv4 import SigV4Request, parse

logger = logging.getLogger(__name__)

Action = Callable[[Call], Awaitable[dict[str, Any]]]
# Each action, and whether it only reads (what a reader key may call).
ACTIONS: dict[str, tuple[Action, bool]] = {
    "CreateQueue": (sqs_queues.create_queue, False),
    "GetQueueUrl": (sqs_queues.get_queue_url, True),
    "ListQueues": (sqs_queues.list_queues, True),
    "DeleteQueue": (sqs_queues.delete_queue, False),
    "PurgeQueue": (sqs_queues.purge_queue, False),
    "GetQueueAttributes": (sqs_queues.get_queue_attributes, True),
    "SetQueueAttributes": (sqs_queues.set_queue_attributes, False),
    "TagQueue": (sqs_queues.tag_queue, False),
    "UntagQueue": (sqs_queues.untag_queue, False),
    "ListQueueTags": (sqs_queues.list_queue_tags, True),
    "AddPermission": (sqs_queues.add_permission, False),
    "RemovePermission": (sqs_queues.remove_permission, False),
    "ListDeadLetterSourceQueues": (sqs_queues.list_dead_letter_source_queues, True),
    "SendMessage": (sqs_messages.send_message, False),
    "SendMessageBatch": (sqs_messages.send_message_batch, False),
    "ReceiveMessage": (sqs_messages.receive_message, False),  # (it hides what it takes)
    "DeleteMessage": (sqs_messages.delete_message, False),
    "DeleteMessageBatch": (sqs_messages.delete_message_batch, False),
    "ChangeMessageVisibility": (sqs_messages.change_message_visibility, False),
    "ChangeMessageVisibilityBatch": (sqs_messages.change_message_visibility_batch, False),
    "StartMessageMoveTask": (sqs_moves.start_message_move_task, False),
    "ListMessageMoveTasks": (sqs_moves.list_message_move_tasks, True),
    "CancelMessageMoveTask": (sqs_moves.cancel_message_move_task, False),
}
# Each action's route, as /metrics names it (`sqs:other`: a request naming none known).
ROUTES = {action: f"sqs:{action}" for action in ACTIONS}
UNKNOWN_ROUTE = "sqs:other"
JSON_TARGET = b"x-amz-target"
FORM = b"application/x-www-form-urlencoded"
# A request's body at most: a largest message's text JSON-escaped (\uXXXX for each
# UTF-16 unit of a character beyond ASCII), with room for the rest of the request.
REQUEST_OVERHEAD = 64 * 1024
ESCAPED_FACTOR = 6


def is_sqs(scope: Scope) -> bool:
    """Whether a request is for this frontend (see the module's docstring)."""
    method = scope["method"]
    if method == "GET":
        return b"Action=" in scope.get("query_string", b"")
    if method != "POST":
        return False
    for name, value in scope["headers"]:
        if name == JSON_TARGET or (name == b"content-type" and value.startswith(FORM)):
            return True
    return False


class SqsFrontend:
    def __init__(self, service: Service, guard: Guard) -> None:
        self.service = service
        self.guard = guard
        self.infos = QueueInfos(service)
        self.moves = sqs_moves.Mover(self.infos)

    async def handle(self, scope: Scope, receive: Receive) -> Response:
        headers = dict(scope["headers"])  # (ASGI servers give names in lower case)
        protocol = Protocol.JSON if JSON_TARGET in headers else Protocol.QUERY
        scope[ROUTE] = UNKNOWN_ROUTE
        try:
            limits = self.service.limits
            largest = ESCAPED_FACTOR * limits.max_sqs_message_bytes + REQUEST_OVERHEAD
            body = await read_body(scope, receive, largest, limits.body_timeout)
            path = [part for part in scope["path"].split("/") if part]
            queue_url = "/" + "/".join(path) if len(path) == 2 else None
            wire = decode(scope["method"], headers, scope.get("query_string", b""), body, queue_url)
            protocol = wire.protocol
            scope[ROUTE] = ROUTES.get(wire.action, UNKNOWN_ROUTE)
            return encode(wire, await self._run(scope, headers, wire, body))
        except SqsError as error:
            return encode_error(protocol, error)
        except BurrowError as error:
            if error.status >= 500:
                logger.error("SQS %s failed: %s", escaped(scope["path"]), escaped(error.message))
            return encode_error(protocol, from_burrow(error))

    async def _run(
        self, scope: Scope, headers: dict[bytes, bytes], wire: SqsCall, body: bytes
    ) -> dict[str, Any]:
        action, reads = ACTIONS[wire.action]
        signature = Signature(scope, body)
        account = self._named_account(scope, wire)
        # With auth off, a call on a named queue needs nothing of its signature: it is
        # read only if asked for (a tenth of a SendMessage's time saved).
        needed = account is None or not isinstance(self.guard, OpenAccess)
        credentials = Credentials(None, "", sigv4=signature.request if needed else None)
        if account is None:
            account = self._own_account(credentials)
        request = Request(
            credentials,
            "GET" if reads else "POST",
            account,
            client_address(scope),
            _zone(headers),
        )
        self.service.admit(self.guard, request)
        origin = Origin(functools.partial(_base_url, scope, headers), signature.region)
        return await action(
            Call(self.service, self.infos, self.moves, wire.params, origin, account)
        )

    @staticmethod
    def _named_account(scope: Scope, wire: SqsCall) -> str | None:
        """The account a call names: its queue's (by URL, ARN or task handle), or the
        endpoint URL path's; None if it names none (then it is the caller's own)."""
        params = wire.params
        path = [part for part in scope["path"].split("/") if part]
        if params.get("QueueUrl"):
            return parse_queue_url(params["QueueUrl"]).account
        if params.get("SourceArn"):
            return parse_arn(params["SourceArn"], "SourceArn").account
        if params.get("TaskHandle"):
            return sqs_moves.task_source(params["TaskHandle"]).account
        owner = params.get("QueueOwnerAWSAccountId") or (path[0] if len(path) == 1 else None)
        return str(owner) if owner else None

    def _own_account(self, credentials: Credentials) -> str:
        account = self.guard.home_account(credentials)
        if not account:
            raise SqsError(
                "MissingAuthenticationToken",
                "The request names no account: sign it with an access key id, or give "
                "the account in the endpoint URL (http://HOST:PORT/ACCOUNT).",
            )
        return account


class Signature:
    """A request's SigV4 signature, read on first use (`sigv4.parse`)."""

    def __init__(self, scope: Scope, body: bytes) -> None:
        self._scope = scope
        self._body = body

    @functools.cached_property
    def request(self) -> SigV4Request | None:
        scope = self._scope
        return parse(
            scope["method"],
            scope.get("raw_path") or scope["path"].encode(),
            scope.get("query_string", b""),
            scope["headers"],
            self._body,
        )

    def region(self) -> str:
        """The region the request was signed for (ARNs name it), else the default."""
        signed = self.request
        return signed.region if signed is not None and signed.region else DEFAULT_REGION


def _base_url(scope: Scope, headers: dict[bytes, bytes]) -> str:
    """scheme://host as the client addressed this server (its Host header)."""
    host = headers.get(b"host", b"").decode("latin-1")
    if not host or any(c in host for c in "/\\ @?#"):
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def _zone(headers: dict[bytes, bytes]) -> str | None:
    zone = headers.get(b"x-burrow-zone")
    return None if zone is None else zone.decode("latin-1")
