"""Settings: built once from defaults, an optional TOML file, the environment and flags.

Each setting is looked up, last one wins, in: its default < the config file (`[server]`,
`[limits]`, `[accounts.NAME]`, `[metrics]`) < the environment (`BURROW_<SETTING>` for a
[server] one, `BURROW_LIMITS_<FIELD>` for a limit, `BURROW_METRICS_<FIELD>` for a
[metrics] one) < the command line. Every value is checked here,
before anything is opened or bound: one of the wrong type or out of range is a
`ConfigError` that names the setting as it was given (flag, variable or file entry) and
says what is allowed. docs/configuration.md lists them all.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from burrow.backends import DEFAULT_BACKEND_URL
from burrow.errors import ConfigError
from burrow.model import Quota


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what one request may ask; anything beyond is a 4xx, never stored."""

    max_body_bytes: int = 256 * 1024
    # An SQS message's size (body and attributes; a batch's too), as SQS allows.
    max_sqs_message_bytes: int = 1024 * 1024
    max_batch_bytes: int = 4 * 1024 * 1024
    max_batch_messages: int = 1000
    max_id_length: int = 255
    max_limit: int = 1000
    # The page a listing, claim or pop gets when it gives no `limit` (v1.0 had none):
    # one request never walks a whole queue; clients page on with `marker`.
    default_limit: int = 100
    # The bodies one listing, claim or pop answers with, in total: it stops at a message
    # boundary (at least one message) and the client pages on with `marker`.
    max_response_bytes: int = 8 * 1024 * 1024
    max_wait: int = 300
    max_ttl: int = 1_209_600  # 14 days
    max_hide: int = 1_209_600
    default_ttl: int = 600
    body_timeout: float = 30.0  # seconds to receive a whole request body (slow senders: 408)
    header_timeout: float = 10.0  # seconds for a request's line and headers to arrive (408)
    # Streams (SSE, WebSocket): seconds between heartbeats on an idle one, and the
    # messages read ahead for one at most (what a slow reader costs the server).
    stream_heartbeat: float = 15.0
    stream_buffer: int = 100
    # Token buckets: requests per second (0 = unlimited) and the burst allowed above it.
    rate_per_account: float = 0
    burst_per_account: int = 100
    rate_per_credential: float = 0
    burst_per_credential: int = 100
    # Failed authentications (401s) per second from one client address, and the burst
    # above it; past them the address is refused (429) before its credentials are read.
    auth_failure_rate_per_address: float = 10
    auth_failure_burst_per_address: int = 100
    # Quotas on what an account holds (0 = no cap); see `Quota`.
    max_queue_messages: int = 0
    max_account_queues: int = 0
    max_account_bytes: int = 0

    @property
    def quota(self) -> Quota:
        return Quota(self.max_queue_messages, self.max_account_queues, self.max_account_bytes)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """`[metrics]`: who may scrape `GET /metrics` besides admins, and how many queues it
    shows (docs/monitoring.md)."""

    token: str = ""  # a token that may scrape (as X-Auth-Token); "": admin keys only
    top_queues: int = 20  # queues with a series of their own, the deepest
    queues: tuple[str, ...] = ()  # "ACCOUNT/QUEUE"s that always have one
    max_queues: int = 1000  # queues a scrape looks at, at most


# Read once for the whole server, so an `[accounts.NAME]` table may not set them: ids
# are checked before any account is looked up, the header timeout runs before the
# request is parsed, and a credential's bucket spans every account it grants.
SERVER_WIDE = frozenset(
    {
        "max_id_length",
        "header_timeout",
        "rate_per_credential",
        "burst_per_credential",
        "auth_failure_rate_per_address",
        "auth_failure_burst_per_address",
    }
)
# Limits that must be at least 1 (above 0 for the timeouts); every other one may be 0.
AT_LEAST_ONE = frozenset(
    {
        "max_body_bytes",
        "max_sqs_message_bytes",
        "max_batch_bytes",
        "max_batch_messages",
        "max_id_length",
        "max_limit",
        "default_limit",
        "max_response_bytes",
        "body_timeout",
        "header_timeout",
        "stream_heartbeat",
        "stream_buffer",
        "burst_per_account",
        "burst_per_credential",
        "auth_failure_burst_per_address",
    }
)
# A default and the limit it may not exceed. A default left unset is lowered to its
# limit (`max_limit = 50` alone gives pages of 50); one set above it is an error.
BOUNDED_DEFAULTS = (("default_limit", "max_limit"), ("default_ttl", "max_ttl"))
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
TRUE, FALSE = frozenset({"1", "true", "yes"}), frozenset({"0", "false", "no"})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything `burrow serve` needs; passed explicitly, never global."""

    host: str = "127.0.0.1"
    port: int = 8080  # 0: any free port (the ready line says which)
    backend: str = DEFAULT_BACKEND_URL
    workers: int = 1
    log_level: str = "info"
    log_format: str = "text"  # or json: one JSON object per line
    access_log: bool = False
    auth: str = "none"  # or keys:PATH
    insecure: bool = False  # allow auth none on an address other than loopback
    # The file of the secret signed URLs are signed with ("": signing.secret next to
    # the key file, made on the first start).
    signing_secret_file: str = ""
    tls_cert: str = ""  # PEM files; with both set the server speaks HTTPS
    tls_key: str = ""
    # Webhook delivery (`burrow.webhooks`), in seconds: whether this server delivers
    # webhooks at all, the most one POST may take, how long a server holds a
    # subscription's delivery (renewed; more than twice the timeout), the first retry's
    # backoff (doubled on each failure up to the max), how often subscriptions are looked
    # for (a new webhook's first delivery may wait this long).
    webhooks: bool = True
    webhook_timeout: float = 10.0
    webhook_lease: float = 30.0
    webhook_backoff: float = 1.0
    webhook_max_backoff: float = 600.0
    webhook_scan_every: float = 5.0
    limits: Limits = field(default_factory=Limits)
    # Accounts whose limits differ from `limits`: `[accounts.NAME]` in the config file
    # sets any `Limits` field but the `SERVER_WIDE` ones for that account, the rest
    # coming from `[limits]`.
    accounts: dict[str, Limits] = field(default_factory=dict)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

    @classmethod
    def load(
        cls,
        config_file: str | None = None,
        environ: Mapping[str, str] | None = None,
        flags: Mapping[str, object] | None = None,
    ) -> Settings:
        """Defaults < config file < `BURROW_*` environment < `flags` (a flag's setting by
        name, None when it was not given).

        Raises ConfigError for anything that cannot work.
        """
        server: Given = {}
        limits: Given = {}
        accounts: dict[str, Given] = {}
        metrics: Given = {}
        if config_file is not None:
            server, limits, accounts, metrics = _read_toml(Path(config_file))
        env = os.environ if environ is None else environ
        server |= _environment(env, "BURROW_", SERVER_TYPES)
        limits |= _environment(env, "BURROW_LIMITS_", LIMIT_TYPES)
        metrics |= _environment(env, "BURROW_METRICS_", METRICS_TYPES)
        _refuse_unknown_limit_variables(env)
        server |= {
            name: Setting(value, "--" + name.replace("_", "-"))
            for name, value in (flags or {}).items()
            if value is not None
        }
        base = _limits(limits, Limits())
        own = {name: _account_limits(given, base) for name, given in accounts.items()}
        return cls(**_server(server), limits=base, accounts=own, metrics=_metrics(metrics))


def boolean(value: object) -> bool:
    """1/0, true/false or yes/no, in any letter case; anything else is a ValueError."""
    text = str(value).strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise ValueError(f"not a boolean: {value!r}")


class Setting(NamedTuple):
    """A value as given, and where: a flag, a variable, or an entry of the config file."""

    value: object
    where: str


Given = dict[str, Setting]


def _types(kind: type[Any]) -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(kind)}


LIMIT_TYPES = _types(Limits)
METRICS_TYPES = _types(MetricsSettings)
SERVER_TYPES = {
    name: kind
    for name, kind in _types(Settings).items()
    if name not in ("limits", "accounts", "metrics")
}
SECTIONS = ("server", "limits", "accounts", "metrics")


def _read_toml(path: Path) -> tuple[Given, Given, dict[str, Given], Given]:
    """The `[server]`, `[limits]`, `[accounts.NAME]` and `[metrics]` tables of a config file."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from error
    unknown = set(document) - set(SECTIONS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown sections {', '.join(sorted(unknown))}; "
            "the sections are [server], [limits], [accounts.NAME] and [metrics]"
        )
    accounts = document.get("accounts", {})
    if not isinstance(accounts, dict):
        raise ConfigError(f"{path}: [accounts] holds one [accounts.NAME] table per account")
    return (
        _entries(document.get("server", {}), "server", path, SERVER_TYPES),
        _entries(document.get("limits", {}), "limits", path, LIMIT_TYPES),
        {
            name: _entries(table, f"accounts.{name}", path, LIMIT_TYPES)
            for name, table in accounts.items()
        },
        _entries(document.get("metrics", {}), "metrics", path, METRICS_TYPES),
    )


def _entries(table: object, title: str, path: Path, known: dict[str, str]) -> Given:
    """The entries of one table of the file, each a known setting."""
    if not isinstance(table, dict):
        what = "limits" if known is LIMIT_TYPES else "settings"
        raise ConfigError(f"{path}: [{title}] must be a table of {what}")
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {unknown[0]!r} in [{title}]; known: {', '.join(known)}"
        )
    return {key: Setting(value, f"[{title}] {key} in {path}") for key, value in table.items()}


def _environment(env: Mapping[str, str], prefix: str, known: dict[str, str]) -> Given:
    found = {name: f"{prefix}{name.upper()}" for name in known}
    return {
        name: Setting(env[variable], variable)
        for name, variable in found.items()
        if variable in env
    }


def _refuse_unknown_limit_variables(env: Mapping[str, str]) -> None:
    """`BURROW_LIMITS_*` names limits only: a misspelt one would otherwise be ignored."""
    known = {f"BURROW_LIMITS_{name.upper()}" for name in LIMIT_TYPES}
    for variable in sorted(env):
        if variable.startswith("BURROW_LIMITS_") and variable not in known:
            raise ConfigError(
                f"unknown variable {variable}; the limits are BURROW_LIMITS_ and one of "
                f"{', '.join(name.upper() for name in LIMIT_TYPES)}"
            )


def _typed(kind: str, setting: Setting) -> Any:
    """The value as its field's type: strings (from the environment) are converted."""
    value, where = setting
    if kind == "bool":
        try:
            return boolean(value)
        except ValueError:
            raise ConfigError(
                f"{where} must be true or false (1/0, yes/no), not {value!r}"
            ) from None
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {value!r}")
        return value
    if kind == "tuple[str, ...]":  # a TOML list of strings, or comma-separated text
        items = [part.strip() for part in value.split(",")] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ConfigError(f"{where} must be a list of strings, not {value!r}")
        return tuple(item for item in items if item)
    wanted = {"int": (int, "an integer"), "float": (float, "a number")}[kind]
    if isinstance(value, bool) or (kind == "int" and isinstance(value, float)):
        raise ConfigError(f"{where} must be {wanted[1]}, not {value!r}")
    try:
        return wanted[0](value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be {wanted[1]}, not {value!r}") from None


def _server(given: Given) -> dict[str, Any]:
    values = {name: _typed(SERVER_TYPES[name], setting) for name, setting in given.items()}
    where = {name: setting.where for name, setting in given.items()}
    if not 0 <= values.get("port", 0) <= 65535:
        raise ConfigError(
            f"{where['port']} must be a port from 1 to 65535, or 0 for any free port, "
            f"not {values['port']}"
        )
    if values.get("workers", 1) < 1:
        raise ConfigError(f"{where['workers']} must be an integer >= 1, not {values['workers']}")
    if values.get("log_format", "text") not in LOG_FORMATS:
        raise ConfigError(
            f"{where['log_format']} must be one of {', '.join(LOG_FORMATS)}, "
            f"not {values['log_format']!r}"
        )
    if "log_level" in values:
        values["log_level"] = values["log_level"].lower()
        if values["log_level"] not in LOG_LEVELS:
            raise ConfigError(
                f"{where['log_level']} must be one of {', '.join(LOG_LEVELS)}, "
                f"not {given['log_level'].value!r}"
            )
    if not values.get("host", "-"):
        raise ConfigError(f"{where['host']} must not be empty (0.0.0.0 for every interface)")
    if bool(values.get("tls_cert")) != bool(values.get("tls_key")):
        one = "tls_cert" if values.get("tls_cert") else "tls_key"
        raise ConfigError(
            f"{where[one]}: tls_cert and tls_key go together (a PEM certificate and its key)"
        )
    _check_webhook_timings(values, where)
    return values


WEBHOOK_TIMINGS = (
    "webhook_timeout",
    "webhook_lease",
    "webhook_backoff",
    "webhook_max_backoff",
    "webhook_scan_every",
)


def _check_webhook_timings(values: dict[str, Any], where: dict[str, str]) -> None:
    for name in WEBHOOK_TIMINGS:
        if name in values and not (math.isfinite(values[name]) and values[name] > 0):
            raise ConfigError(f"{where[name]} must be a number of seconds > 0, not {values[name]}")
    default = Settings()
    timeout = values.get("webhook_timeout", default.webhook_timeout)
    lease = values.get("webhook_lease", default.webhook_lease)
    if lease <= 2 * timeout:
        named = where.get("webhook_lease") or where["webhook_timeout"]
        raise ConfigError(
            f"{named}: webhook_lease ({lease:g}) must be more than twice webhook_timeout "
            f"({timeout:g}): a POST starts only while half the lease is left"
        )


def _metrics(given: Given) -> MetricsSettings:
    values = {name: _typed(METRICS_TYPES[name], setting) for name, setting in given.items()}
    for name in ("top_queues", "max_queues"):
        if name in values:
            _check_limit(values[name], name == "max_queues", given[name].where)
    for queue in values.get("queues", ()):
        account, slash, name = queue.partition("/")
        if not (account and slash and name) or "/" in name:
            raise ConfigError(f"{given['queues'].where}: {queue!r} is not ACCOUNT/QUEUE")
    return MetricsSettings(**values)


def _limits(given: Given, inherited: Limits) -> Limits:
    """`inherited` with the given fields, each checked against its range."""
    values = {name: _typed(LIMIT_TYPES[name], setting) for name, setting in given.items()}
    for name, value in values.items():
        _check_limit(value, name in AT_LEAST_ONE, given[name].where)
    limits = dataclasses.replace(inherited, **values)
    for default, maximum in BOUNDED_DEFAULTS:
        value, ceiling = getattr(limits, default), getattr(limits, maximum)
        if default in given and value > ceiling:
            raise ConfigError(
                f"{given[default].where} must be at most {maximum} ({ceiling}), not {value}"
            )
        limits = dataclasses.replace(limits, **{default: min(value, ceiling)})
    return limits


def _check_limit(value: float, at_least_one: bool, where: str) -> None:
    if isinstance(value, int):
        if value < at_least_one:
            raise ConfigError(f"{where} must be an integer >= {int(at_least_one)}, not {value}")
    elif not math.isfinite(value) or value < 0 or (at_least_one and value == 0):
        raise ConfigError(
            f"{where} must be a number {'> 0' if at_least_one else '>= 0'}, not {value}"
        )


def _account_limits(given: Given, base: Limits) -> Limits:
    misplaced = sorted(SERVER_WIDE & set(given))
    if misplaced:
        raise ConfigError(
            f"{given[misplaced[0]].where}: {misplaced[0]} is server-wide, the same for every "
            "account; set it in [limits]"
        )
    return _limits(given, base)
