"""The client commands of `burrow`: put, get, claim, pop, delete, ls, watch, stats.

Each takes `--server` (env `BURROW_URL`; several servers by repeating it or
separating URLs by commas; each a server's root URL, `http(s)://host[:port]`),
`--token` (env `BURROW_TOKEN`), `--cacert` (env `BURROW_CACERT`) and `--json`.
Output: one line per message, `ID<TAB>ttl=N<TAB>hide=N<TAB>BODY` (the body as
text with control characters escaped, or `<N bytes>` when it is not UTF-8), one
line per name; with `--json`, one JSON document (messages as the server renders
them at `detail=all`), except `watch`, which prints one per line.
Without `--limit`, `ls` and `get` list everything, page after page.
Exit status: 0 on success, 1 on an API error, 2 on a usage error. `ls` lists
what there is: an empty listing is a success (`no accounts`, … on stderr;
`[]` with `--json`). `get`, `claim`, `pop` and `delete` ask for messages: none
matching is status 1 (`no messages matched` on stderr), so that scripts can
test for it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import click
import orjson

from burrow.client import Client
from burrow.client.calls import get_stats
from burrow.client.endpoint import server_root
from burrow.client.wire import Tls, tls_setting
from burrow.codec import message_fields
from burrow.errors import BurrowError, NoMatch
from burrow.model import Message
from burrow.subscriptions import MAX_ATTEMPTS, STARTS

# `-h` as well as `--help`, on each command itself and not only through the group:
# click keeps a command's help option once made, so a command first run on its own
# (as the tests do) would otherwise never learn `-h`.
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
DEFAULT_URL = "http://127.0.0.1:8080"
SECONDS = click.IntRange(min=0)
LIMIT = click.IntRange(min=1)
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(32), 127]} | {9: "\\t", 10: "\\n", 13: "\\r"}


@dataclass(frozen=True, slots=True)
class Session:
    """What every client command gets: where the server is, and how to print."""

    servers: list[str]
    token: str | None
    tls: Tls
    as_json: bool

    def client(self, account: str | None = None) -> Client:
        return Client(self.servers, account, token=self.token, verify=self.tls)

    def show(self, document: Any, lines: Iterable[str]) -> None:
        if self.as_json:
            click.echo(orjson.dumps(document))
        else:
            for line in lines:
                click.echo(line)

    def listing(self, document: list[Any], lines: Iterable[str], what: str) -> None:
        """What `ls` found; finding nothing is an answer too: `[]`, or `no WHAT` on stderr."""
        if not document and not self.as_json:
            click.echo(f"no {what}", err=True)
        self.show(document, lines)

    def messages(self, messages: list[Message]) -> None:
        """Messages asked for (get, claim, pop): none is an error, `NoMatch`."""
        if not messages:
            raise NoMatch()
        self.show(*message_rows(messages))

    def message(self, message: Message) -> None:
        self.show(message_fields(message), [message_line(message)])


def message_rows(messages: list[Message]) -> tuple[list[dict[str, Any]], Iterable[str]]:
    """Messages as a JSON document and as lines."""
    return [message_fields(m) for m in messages], map(message_line, messages)


def message_line(message: Message) -> str:
    return f"{message.id}\tttl={message.ttl}\thide={message.hide}\t{shown(message.body)}"


def shown(body: bytes) -> str:
    """A body for a terminal: text, control characters escaped; else its size."""
    try:
        return body.decode().translate(_ESCAPES)
    except UnicodeDecodeError:
        return f"<{len(body)} bytes>"


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """End the command with a Burrow error's message (exit status 1), no traceback."""
    try:
        yield
    except BurrowError as error:
        raise click.ClickException(error.message) from error


def client_command(func: Callable[..., None]) -> Callable[..., None]:
    """Add `--server`, `--token`, `--json`; pass a `Session`; turn API errors into exit 1."""

    @click.option(
        "--server",
        "servers",
        envvar="BURROW_URL",
        multiple=True,
        default=[DEFAULT_URL],
        show_default=True,
        metavar="URL",
        help="A Burrow server; repeat it or separate URLs by commas for several (env BURROW_URL).",
    )
    @click.option("--token", envvar="BURROW_TOKEN", help="Credential (env BURROW_TOKEN).")
    @click.option(
        "--cacert",
        envvar="BURROW_CACERT",
        type=click.Path(exists=True, dir_okay=False),
        metavar="PATH",
        help="Trust only this PEM CA bundle for https servers (env BURROW_CACERT).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @functools.wraps(func)
    def command(
        servers: tuple[str, ...],
        token: str | None,
        cacert: str | None,
        as_json: bool,
        **arguments: Any,
    ) -> None:
        session = Session(_server_urls(servers), token or None, _tls(cacert), as_json)
        with reported():
            func(session, **arguments)

    return command


def _server_urls(values: tuple[str, ...]) -> list[str]:
    urls = [url.strip() for value in values for url in value.split(",") if url.strip()]
    if not urls:
        raise click.BadParameter("give a server URL", param_hint="--server")
    try:
        roots = [server_root(url) for url in urls]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--server") from None
    if len(set(roots)) != len(roots):
        raise click.BadParameter("a server is given twice", param_hint="--server")
    return roots


def _tls(cacert: str | None) -> Tls:
    try:
        return True if cacert is None else tls_setting(cacert)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--cacert") from None


# Commands ---------------------------------------------------------------------------------


@click.command(context_settings=HELP_OPTIONS)
@click.argument("account")
@click.argument("queue")
@click.argument("message_id", metavar="[ID]", required=False)
@click.option("--ttl", type=SECONDS, help="Seconds until it expires, 0 for never.")
@click.option("--hide", type=SECONDS, help="Seconds it stays hidden.  [default: 0]")
@click.option("--body", help="The body, as given (read from stdin if not given).")
@click.option("--raw", is_flag=True, help="Keep the trailing newline of a body read from stdin.")
@client_command
def put(
    cli: Session,
    account: str,
    queue: str,
    message_id: str | None,
    ttl: int | None,
    hide: int | None,
    body: str | None,
    raw: bool,
) -> None:
    """Create or replace a message; prints its id (the server picks one without ID).

    A body read from stdin loses one trailing newline (so that `echo hi | burrow put`
    stores `hi`), unless --raw is given.
    """
    data = body.encode() if body is not None else _stdin_body(raw)
    with cli.client(account) as client:
        new_id = client.queue(queue).put(data, message_id, ttl=ttl, hide=hide)
    cli.show({"id": new_id}, [new_id])


def _stdin_body(raw: bool) -> bytes:
    """The body piped in: as it is with `raw`, else without one trailing newline."""
    data = sys.stdin.buffer.read()
    if raw:
        return data
    return data.removesuffix(b"\r\n") if data.endswith(b"\r\n") else data.removesuffix(b"\n")


@click.command(context_settings=HELP_OPTIONS)
@click.argument("account")
@click.argument("queue")
@click.argument("message_id", metavar="[ID]", required=False)
@click.option("--limit", type=LIMIT, help="At most this many messages (default: all).")
@click.option("--marker", help="Start after this message id.")
@click.option("--match-hidden", is_flag=True, help="Include hidden messages.")
@click.option("--wait", type=SECONDS, default=0, help="Seconds to wait for a message.")
@client_command
def get(
    cli: Session,
    account: str,
    queue: str,
    message_id: str | None,
    limit: int | None,
    marker: str | None,
    match_hidden: bool,
    wait: int,
) -> None:
    """Show one message, or a queue's messages without changing them."""
    with cli.client(account) as client:
        if message_id is None:
            cli.messages(client.queue(queue).get(limit, marker, match_hidden, wait))
        elif limit or marker or match_hidden or wait:
            raise click.UsageError("ID does not go with --limit, --marker, --match-hidden, --wait")
        else:
            cli.message(client.queue(queue).get_one(message_id))


@click.command(context_settings=HELP_OPTIONS)
@click.argument("account")
@click.argument("queue")
@click.option("--limit", type=LIMIT, default=1, show_default=True, help="At most this many.")
@click.option("--hide", type=SECONDS, default=60, show_default=True, help="Seconds to hide them.")
@click.option("--wait", type=SECONDS, default=0, show_default=True, help="Seconds to wait.")
@client_command
def claim(cli: Session, account: str, queue: str, limit: int, hide: int, wait: int) -> None:
    """Take visible messages for processing: hide them, print them."""
    with cli.client(account) as client:
        cli.messages(client.queue(queue).claim(limit, hide, wait))


@click.command(context_settings=HELP_OPTIONS)
@click.argument("account")
@click.argument("queue")
@click.option("--limit", type=LIMIT, default=1, show_default=True, help="At most this many.")
@click.option("--wait", type=SECONDS, default=0, show_default=True, help="Seconds to wait.")
@client_command
def pop(cli: Session, account: str, queue: str, limit: int, wait: int) -> None:
    """Delete visible messages and print them."""
    with cli.client(account) as client:
        cli.messages(client.queue(queue).pop(limit, wait))


@click.command(context_settings=HELP_OPTIONS)
@click.argument("account")
@click.argument("queue", required=False)
@click.argument("message_id", metavar="[ID]", required=False)
@client_command
def delete(cli: Session, account: str, queue: str | None, message_id: str | None) -> None:
    """Delete a message, all of a queue's messages, or all of an account's.

    Hidden messages are deleted too. Prints nothing; with --json, the list of
    what was deleted (queue names for an account, message ids otherwise).
    """
    with cli.client(account) as client:
        if queue is None:
            deleted = client.delete()
            what = "queues"
        elif message_id is None:
            deleted = client.queue(queue).delete_all()
            what = "messages"
        else:
            client.queue(queue).delete(message_id)
            deleted, what = [message_id], "messages"
    if not deleted:
        raise NoMatch(what)
    if cli.as_json:
        cli.show(deleted, [])


@click.command(context_settings=HELP_OPTIONS)
@click.argument("account", required=False)
@click.argument("queue", required=False)
@click.option("--limit", type=LIMIT, help="At most this many (default: all).")
@click.option("--marker", help="Start after this name or id.")
@client_command
def ls(
    cli: Session, account: str | None, queue: str | None, limit: int | None, marker: str | None
) -> None:
    """List accounts, an account's queues, or all of a queue's messages (hidden too).

    Without --limit, everything, page after page. An empty listing is no error: it
    prints `no accounts` (queues, messages) on stderr, or `[]` with --json.
    """
    with cli.client(account) as client:
        if account is None:
            names = client.accounts(limit, marker)
            cli.listing(names, names, "accounts")
        elif queue is None:
            names = client.queues(limit, marker)
            cli.listing(names, names, "queues")
        else:
            messages = client.queue(queue).get(limit, marker, match_hidden=True)
            cli.listing(*message_rows(messages), "messages")


@click.command(context_settings=HELP_OPTIONS)
@click.argument("account")
@click.argument("queue")
@click.option("--wait", type=SECONDS, default=20, show_default=True, help="Long poll seconds.")
@click.option("--count", type=LIMIT, help="Stop after this many messages.")
@click.option("--marker", help="Start after this message id (default: the oldest).")
@click.option("--match-hidden", is_flag=True, help="Include hidden messages.")
@click.option(
    "--sse",
    is_flag=True,
    help="Have the (first) server push them (Server-Sent Events; hidden ones too).",
)
@click.option("--subscription", help="With --sse: start at this subscription's cursor.")
@client_command
def watch(
    cli: Session,
    account: str,
    queue: str,
    wait: int,
    count: int | None,
    marker: str | None,
    match_hidden: bool,
    sse: bool,
    subscription: str | None,
) -> None:
    """Print a queue's messages, then each new one as it comes (like tail -f).

    Messages are only read, never claimed. Runs until Ctrl-C or --count
    messages; with --wait 0, until it has caught up. --json prints one JSON
    document per line. With --sse the server pushes each message as it is put
    (--wait does not apply; a dropped stream is resumed where it stopped); with a
    writer's token and --subscription, the server moves the subscription's cursor.
    """
    if subscription is not None and not sse:
        raise click.UsageError("--subscription streams: give --sse too")
    with cli.client(account) as client:
        handle = client.queue(queue)
        if sse:
            stream = handle.stream(marker=marker, subscription=subscription)
        else:
            stream = handle.follow(wait=wait, marker=marker, match_hidden=match_hidden)
        try:
            for message in itertools.islice(stream, count):
                cli.message(message)
        except KeyboardInterrupt:
            pass


@click.command(context_settings=HELP_OPTIONS)
@click.argument("account", required=False)
@click.argument("queue", required=False)
@client_command
def stats(cli: Session, account: str | None, queue: str | None) -> None:
    """Show a queue's stats, those of each of an account's queues, or (admin) of each
    account summed over its queues.

    One line per queue or account: its name, then `name=value` fields (ages in seconds,
    `-` for a queue holding no message). With several servers, the first that answers.
    """
    names = [name for name in (account, queue) if name is not None]
    with cli.client() as client:
        found = client.send(get_stats(*names))
    if queue is not None:
        cli.show(found, [_stats_line(found)])
    else:
        cli.show(found, [f"{name}\t{_stats_line(one)}" for name, one in found.items()])


def _stats_line(stats: dict[str, Any]) -> str:
    return "\t".join(f"{name}={'-' if value is None else value}" for name, value in stats.items())


@click.command(context_settings=HELP_OPTIONS)
@click.argument("account")
@click.argument("queue")
@click.argument("name")
@click.option(
    "--start",
    type=click.Choice(STARTS),
    default="newest",
    show_default=True,
    help="Where a new subscription starts: after the queue's last message, or at its first.",
)
@click.option("--webhook", metavar="URL", help="POST each message to this URL (signed).")
@click.option("--secret", help="The webhook's whsec_ secret (default: the server makes one).")
@click.option("--max-attempts", type=click.IntRange(1, MAX_ATTEMPTS), help="Attempts per message.")
@click.option("--dead-letter-queue", metavar="QUEUE", help="Default: QUEUE-dead.")
@client_command
def subscribe(
    cli: Session,
    account: str,
    queue: str,
    name: str,
    start: str,
    webhook: str | None,
    secret: str | None,
    max_attempts: int | None,
    dead_letter_queue: str | None,
) -> None:
    """Create (or change) a durable subscription of a queue, and print it.

    Its cursor is kept by the server: read through it with `?subscription=NAME`
    (docs/push.md). With --webhook, the server delivers each message to URL; the
    secret it signs with is printed once, when the server made it. An existing
    subscription keeps its cursor and takes these webhook settings.
    """
    hook = None
    if webhook is not None:
        given = {"secret": secret, "max_attempts": max_attempts,
                 "dead_letter_queue": dead_letter_queue}  # fmt: skip
        hook = {"url": webhook, **{k: v for k, v in given.items() if v is not None}}
    with cli.client(account) as client:
        found = client.queue(queue).subscribe(name, start, hook)
    hooked = found["webhook"] or {}
    fields = {"name": found["name"], "cursor": found["cursor"] or "-", **hooked}
    cli.show(found, ["\t".join(f"{key}={value}" for key, value in fields.items())])


COMMANDS = (put, get, claim, pop, delete, ls, watch, stats, subscribe)


def register(group: click.Group) -> None:
    """Add the client commands to the `burrow` command group."""
    for command in COMMANDS:
        group.add_command(command)
