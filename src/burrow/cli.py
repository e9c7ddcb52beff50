"""The `burrow` command: `burrow serve` and the client commands."""

from __future__ import annotations

import logging
import sys

import click

from burrow.cli_client import register
from burrow.config import Settings
from burrow.errors import BurrowError


@click.group("burrow")
@click.version_option(package_name="burrow")
def main() -> None:
    """Burrow, a multi-tenant message queue service with a REST API."""


@main.command()
@click.option("--host", help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=int, help="Port to listen on.  [default: 8080]")
@click.option("--backend", help="Storage URL.  [default: sqlite:///data/burrow.db]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML file.")
@click.option("--workers", type=int, help="Worker processes.  [default: 1]")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--access-log/--no-access-log", default=None, help="Log every request.")
def serve(
    host: str | None,
    port: int | None,
    backend: str | None,
    config_file: str | None,
    workers: int | None,
    log_level: str | None,
    access_log: bool | None,
) -> None:
    """Serve the REST API until interrupted (SIGINT or SIGTERM)."""
    from burrow.server import serve as run_server

    try:
        settings = Settings.load(
            config_file,
            host=host,
            port=port,
            backend=backend,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
        )
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        run_server(settings)
    except KeyboardInterrupt:
        pass  # Ctrl-C: the server has already shut down gracefully
    except BurrowError as error:
        raise click.ClickException(error.message) from error


register(main)
