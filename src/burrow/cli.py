"""The `burrow` command: `burrow serve` and the client commands."""

from __future__ import annotations

import contextlib
import logging
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click

from burrow import keys, logs, signing_secret
from burrow.cli_client import HELP_OPTIONS, register, reported
from burrow.cli_transfer import register as register_transfer
from burrow.config import Settings
from burrow.errors import ConfigError, InvalidRequest
from burrow.keys import Role
from burrow.top import top


@click.group("burrow", context_settings=HELP_OPTIONS)
@click.version_option(package_name="burrow", prog_name="burrow")
def main() -> None:
    """Burrow, a multi-tenant message queue service with a REST API."""


class BadSetting(click.ClickException):
    """A setting `burrow serve` cannot start with: one line, exit status 2 (usage error)."""

    exit_code = 2


@contextlib.contextmanager
def refused_settings() -> Iterator[None]:
    try:
        yield
    except ConfigError as error:
        raise BadSetting(error.message) from error


# Values are passed on as given: `Settings.load` checks them, as it does those of the
# environment and the config file, and names the one that is wrong.
@main.command()
@click.option("--host", metavar="HOST", help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", metavar="PORT", help="1-65535, or 0 for any free port.  [default: 8080]")
@click.option("--backend", metavar="URL", help="Storage URL.  [default: sqlite:///data/burrow.db]")
@click.option(
    "--config",
    "config_file",
    envvar="BURROW_CONFIG",
    metavar="FILE",
    help="TOML file of settings (env BURROW_CONFIG).",
)
@click.option("--workers", metavar="N", help="Worker processes.  [default: 1]")
@click.option("--log-level", metavar="LEVEL", help="debug, info, warning, error.  [default: info]")
@click.option(
    "--log-format", metavar="FORMAT", help="text, or json (a JSON object a line).  [default: text]"
)
@click.option("--access-log/--no-access-log", default=None, help="Log every request.")
@click.option(
    "--auth",
    metavar="MODE",
    help="none, or keys:PATH (a file made by `burrow keys`).  [default: none]",
)
@click.option(
    "--insecure", is_flag=True, default=None, help="Allow --auth none off the loopback address."
)
@click.option("--tls-cert", metavar="FILE", help="PEM certificate (with --tls-key: HTTPS).")
@click.option("--tls-key", metavar="FILE", help="PEM private key of --tls-cert.")
@click.option(
    "--signing-secret-file",
    metavar="FILE",
    help="The secret signed URLs are signed with.  [default: signing.secret next to the "
    "key file, made on the first start]",
)
def serve(config_file: str | None, **flags: str | bool | None) -> None:
    """Serve the REST API until interrupted (SIGINT or SIGTERM).

    Every setting may also come from the config file or the environment
    (BURROW_PORT, BURROW_LIMITS_MAX_BODY_BYTES, ...); see docs/configuration.md.
    """
    from burrow.server import serve as run_server

    status = 0
    with reported(), refused_settings(), contextlib.suppress(KeyboardInterrupt):
        # Ctrl-C is not an error: the server has already shut down gracefully.
        settings = Settings.load(config_file, flags=flags)
        logs.configure(settings.log_level, settings.log_format)
        # httpx logs each request at INFO: for a proxy (the http and ring backends) a
        # line per upstream call, which is debug detail.
        quiet = settings.log_level != "debug"
        logging.getLogger("httpx").setLevel(logging.WARNING if quiet else logging.DEBUG)
        status = run_server(settings)
    if status:
        sys.exit(status)


@main.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys in a key file (for `serve --auth keys:PATH`)."""


KEY_FILE = click.option(
    "--file", "path", required=True, type=click.Path(dir_okay=False, path_type=Path)
)
SIGNING_SECRET_FILE = click.option(
    "--signing-secret-file",
    "secret_file",
    envvar="BURROW_SIGNING_SECRET_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The server's signing secret.  [default: signing.secret next to --file]",
)


def server_secret(key_file: Path, secret_file: Path | None) -> bytes:
    """The signing secret of a server with this key file (`SIGNING_SECRET_FILE`); never
    made here: one made apart from the server's would sign what it refuses."""
    path = secret_file or signing_secret.default_path(key_file)
    if secret_file is None and not path.exists():
        raise ConfigError(
            f"no signing secret {path} yet: the server makes it on its first start with "
            f"--auth keys:{key_file}, or give --signing-secret-file"
        )
    return signing_secret.load(path)


@keys_group.command("add")
@KEY_FILE
@click.option("--account", "accounts", multiple=True, help="An account the key grants.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.WRITER.value)
def keys_add(path: Path, accounts: tuple[str, ...], role: str) -> None:
    """Create a key; prints its token, which is stored nowhere."""
    with reported():
        key, token = keys.add(path, list(accounts), Role(role))
    click.echo(token)
    click.echo(f"its SQS credentials: burrow keys sqs {key.id} --file {path}", err=True)


@keys_group.command("list")
@KEY_FILE
def keys_list(path: Path) -> None:
    """One line per key: id, role, accounts, creation time (never tokens)."""
    with reported():
        found = keys.load(path)
    for key in found.values():
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(key.created))
        granted = ",".join(key.accounts) or "*"
        click.echo(f"{key.id}\t{key.role}\t{granted}\t{created}")


@keys_group.command("revoke")
@KEY_FILE
@click.argument("key_id")
def keys_revoke(path: Path, key_id: str) -> None:
    """Revoke a key; a server using the file refuses it within a second."""
    with reported():
        keys.revoke(path, key_id)


@keys_group.command("sqs")
@KEY_FILE
@click.argument("key_id")
@SIGNING_SECRET_FILE
@click.option("--env", is_flag=True, help="As `export AWS_...=` lines, for a shell's eval.")
def keys_sqs(path: Path, key_id: str, secret_file: Path | None, env: bool) -> None:
    """Print a key's SQS credentials: its access key id and secret access key.

    The secret is derived from the key and the server's signing secret, and stored
    nowhere: run this where the key file and the signing secret are.
    """
    with reported():
        key = keys.find(keys.load(path), path, key_id)
        secret = keys.sqs_secret(server_secret(path, secret_file), key)
    if env:
        click.echo(f"export AWS_ACCESS_KEY_ID={shlex.quote(key.id)}")
        click.echo(f"export AWS_SECRET_ACCESS_KEY={shlex.quote(secret)}")
    else:  # as in an AWS credentials file
        click.echo(f"aws_access_key_id = {key.id}")
        click.echo(f"aws_secret_access_key = {secret}")


def _methods(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    try:
        return keys.signable_methods(value.split(","))
    except InvalidRequest as error:
        raise click.BadParameter(error.message) from error


@main.command("sign")
@KEY_FILE
@click.option("--key-id", required=True, help="The key whose grant the URL carries.")
@click.option(
    "--method",
    "methods",
    required=True,
    callback=_methods,
    help="Comma-separated, of GET, PUT, POST, DELETE.",
)
@click.option("--path", "prefix", required=True, help="Path prefix, e.g. /v1.0/acct/queue.")
@click.option(
    "--expires",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds the URL stays valid.",
)
@click.option("--server", envvar="BURROW_URL", default="http://127.0.0.1:8080", show_default=True)
@SIGNING_SECRET_FILE
def sign(
    path: Path,
    key_id: str,
    methods: tuple[str, ...],
    prefix: str,
    expires: int,
    server: str,
    secret_file: Path | None,
) -> None:
    """Print a URL that allows METHODS below PATH until it expires, with no token.

    Run where the server's key file and signing secret are; a holder of a token asks
    the server instead (POST /sign, docs/security.md).
    """
    with reported():
        key = keys.find(keys.load(path), path, key_id)
        url = keys.signed_url(key, server_secret(path, secret_file), methods, prefix, expires)
    click.echo(f"{server.rstrip('/')}{url}")


@main.group("ring")
def ring_group() -> None:
    """Inspect a ring file (for `serve --backend ring:///relative.toml` or `ring:////absolute.toml`)."""


@ring_group.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--account", "accounts", multiple=True, help="Show where this account lives.")
def ring_show(path: Path, accounts: tuple[str, ...]) -> None:
    """Print the ring's members by zone, and each given account's members per zone."""
    from burrow.backends.ring_placement import load_ring

    with reported():
        ring = load_ring(path)
    click.echo(f"zone {ring.zone} (this proxy's), {ring.replicas} members per account and zone")
    for zone in ring.zones:
        click.echo(f"{zone}: {', '.join(m.url for m in ring.members if m.zone == zone)}")
    for account in accounts:
        click.echo(f"account {account}:")
        for zone in ring.zones:
            click.echo(f"  {zone}: {', '.join(m.url for m in ring.account_set(account, zone))}")


register(main)
register_transfer(main)
main.add_command(top)
