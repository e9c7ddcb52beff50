"""`burrow export`, `burrow import` and `burrow migrate`: moving queues between backends.

Exit status: 0 when done (and verified), 1 when verification finds a difference or a
backend fails, 2 for a usage error: a URL no backend takes, a state file of another
migrate, a malformed dump line (named by its number). See docs/transfer.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click

from burrow.backends import describe_backend, open_backend
from burrow.backends.base import Backend
from burrow.cli_client import HELP_OPTIONS, reported
from burrow.errors import ConfigError
from burrow.transfer import (
    BATCH,
    Batch,
    Check,
    Step,
    pipeline,
    queues_of,
    source_steps,
    total_messages,
    verify,
)
from burrow.transfer_dump import DumpError, DumpReader, DumpWriter, export_dump, import_dump
from burrow.transfer_progress import Progress
from burrow.transfer_state import MigrateState, default_path


class Unusable(click.ClickException):
    """What the command was given cannot work: one line, exit status 2."""

    exit_code = 2


@contextlib.contextmanager
def refused() -> Iterator[None]:
    """Configuration errors are exit 2, other Burrow errors exit 1 (`reported`)."""
    with reported():
        try:
            yield
        except ConfigError as error:
            raise Unusable(error.message) from error


ACCOUNTS = click.option(
    "--account", "accounts", multiple=True, metavar="A", help="Only this account (repeatable)."
)
BATCH_SIZE = click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=BATCH,
    show_default=True,
    help="Messages per read and per write.",
)


@click.command("export", context_settings=HELP_OPTIONS)
@click.option("--backend", "url", required=True, metavar="URL", help="The backend to read.")
@ACCOUNTS
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the dump here.  [default: stdout]",
)
@BATCH_SIZE
def export_command(url: str, accounts: tuple[str, ...], output: Path | None, batch: int) -> None:
    """Write a backend's queues (messages, hidden ones too, and queue infos) as JSON lines."""
    with refused():
        source = open_backend(url)
        with output.open("wb") if output else contextlib.nullcontext(sys.stdout.buffer) as out:
            writer = DumpWriter(out, describe_backend(url), accounts)
            asyncio.run(_export(source, accounts, writer, batch))
        if output:
            click.echo(
                f"exported {writer.messages:,} messages of {writer.queues:,} queues to {output}",
                err=True,
            )


async def _export(
    source: Backend, accounts: tuple[str, ...], writer: DumpWriter, batch: int
) -> None:
    async with source:
        queues = await queues_of(source, accounts)
        with Progress("export", await total_messages(source, queues)) as progress:
            await export_dump(source, writer, queues, batch, progress.advance)


@click.command("import", context_settings=HELP_OPTIONS)
@click.option("--backend", "url", required=True, metavar="URL", help="The backend to write.")
@click.option(
    "--input",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the dump from here.  [default: stdin]",
)
@click.option(
    "--skip",
    type=click.IntRange(min=0),
    default=0,
    help="Check but do not write the first N lines (to go on after an interrupted import).",
)
@BATCH_SIZE
def import_command(url: str, source: Path | None, skip: int, batch: int) -> None:
    """Write the queues of a dump made by `burrow export`; checks each queue's end line."""
    with refused():
        target = open_backend(url)
        with source.open("rb") if source else contextlib.nullcontext(sys.stdin.buffer) as lines:
            reader = DumpReader(lines, skip, batch)
            asyncio.run(_import(target, reader))
    for mismatch in reader.mismatches:
        click.echo(f"mismatch: {mismatch}")
    verdict = "differs" if reader.mismatches else "verified"
    click.echo(
        f"imported {reader.messages:,} messages from the dump of {reader.header['source']} "
        f"({reader.header['time']}); {reader.verified:,} queues' end lines verified: "
        f"the dump {verdict}"
    )
    if reader.mismatches:
        sys.exit(1)


async def _import(target: Backend, reader: DumpReader) -> None:
    written = 0  # the last line the target holds

    def committed(step: Step) -> None:
        nonlocal written
        written = max(written, step.line)
        if isinstance(step, Batch):
            progress.advance(len(step.messages))

    async with target:
        with Progress("import", None) as progress:
            try:
                await import_dump(target, reader, committed)
            except DumpError as error:
                raise Unusable(
                    f"{error.message} (the lines before it are imported: once it is "
                    f"fixed, --skip {error.line - 1} goes on after them)"
                ) from error
            except Exception:
                click.echo(
                    f"import stopped after line {written} (--skip {written} goes on after it)",
                    err=True,
                )
                raise


@click.command("migrate", context_settings=HELP_OPTIONS)
@click.option("--from", "source_url", required=True, metavar="URL", help="The backend to read.")
@click.option("--to", "target_url", required=True, metavar="URL", help="The backend to write.")
@ACCOUNTS
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the copy has got to, for a rerun to resume.  "
    "[default: ./burrow-migrate-HASH.json, one per --from, --to and accounts]",
)
@BATCH_SIZE
def migrate_command(
    source_url: str, target_url: str, accounts: tuple[str, ...], state: Path | None, batch: int
) -> None:
    """Copy queues from one backend to another, resumably, then verify them."""
    with refused():
        source, target = open_backend(source_url), open_backend(target_url)
        described = describe_backend(source_url), describe_backend(target_url)
        saved = MigrateState(state or default_path(*described, accounts), *described)
        checks = asyncio.run(_migrate(source, target, accounts, saved, batch))
    differ = [check for check in checks if not check.equal]
    for check in differ:
        click.echo(f"mismatch: {check.describe()}")
    messages = sum(check.source.digest.count for check in checks)
    if differ:
        click.echo(f"{len(differ):,} of {len(checks):,} queues differ; state kept in {saved.path}")
        sys.exit(1)
    saved.remove()
    click.echo(f"verified {len(checks):,} queues ({messages:,} messages): source and target equal")


async def _migrate(
    source: Backend, target: Backend, accounts: tuple[str, ...], state: MigrateState, batch: int
) -> list[Check]:
    def committed(step: Step) -> None:
        if isinstance(step, Batch):
            state.committed(step.account, step.queue, step.messages[-1].id)
            progress.advance(len(step.messages))

    async with source, target:
        queues = await queues_of(source, accounts)
        total = await total_messages(source, queues)
        if state.last:
            click.echo(f"resuming from {state.path} ({len(state.last):,} queues begun)", err=True)
        started = time.monotonic()
        with Progress("copy", total) as progress:
            await pipeline(source_steps(source, queues, state.last, batch), target, committed)
        elapsed = time.monotonic() - started
        click.echo(
            f"copied {progress.done:,} messages of {len(queues):,} queues in {elapsed:.1f} s "
            f"({progress.done / max(elapsed, 1e-9):,.0f} msgs/s)"
        )
        with Progress("verify", total) as checking:
            return await verify(
                source,
                target,
                queues,
                lambda check: checking.advance(check.source.digest.count),
                batch,
            )


def register(group: click.Group) -> None:
    """Add export, import and migrate to the `burrow` command group."""
    for command in (export_command, import_command, migrate_command):
        group.add_command(command)
