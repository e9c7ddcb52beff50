"""Settings: built once from defaults, an optional TOML file, the environment and flags."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from burrow.backends import DEFAULT_BACKEND_URL
from burrow.errors import InvalidRequest
from burrow.model import Quota


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what one request may ask; anything beyond is a 4xx, never stored."""

    max_body_bytes: int = 256 * 1024
    max_batch_bytes: int = 4 * 1024 * 1024
    max_batch_messages: int = 1000
    max_id_length: int = 255
    max_limit: int = 1000
    # The page a listing, claim or pop gets when it gives no `limit` (v1.0 had none):
    # one request never walks a whole queue; clients page on with `marker`.
    default_limit: int = 100
    max_wait: int = 300
    max_ttl: int = 1_209_600  # 14 days
    max_hide: int = 1_209_600
    default_ttl: int = 600
    body_timeout: float = 30.0  # seconds to receive a whole request body (slow senders: 408)
    header_timeout: float = 10.0  # seconds for a request's line and headers to arrive (408)
    # Token buckets: requests per second (0 = unlimited) and the burst allowed above it.
    rate_per_account: float = 0
    burst_per_account: int = 100
    rate_per_credential: float = 0
    burst_per_credential: int = 100
    # Quotas on what an account holds (0 = no cap); see `Quota`.
    max_queue_messages: int = 0
    max_account_queues: int = 0
    max_account_bytes: int = 0

    @property
    def quota(self) -> Quota:
        return Quota(self.max_queue_messages, self.max_account_queues, self.max_account_bytes)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything `burrow serve` needs; passed explicitly, never global."""

    host: str = "127.0.0.1"
    port: int = 8080
    backend: str = DEFAULT_BACKEND_URL
    workers: int = 1
    log_level: str = "info"
    access_log: bool = False
    auth: str = "none"  # or keys:PATH
    insecure: bool = False  # allow auth none on an address other than loopback
    tls_cert: str = ""  # PEM files; with both set the server speaks HTTPS
    tls_key: str = ""
    limits: Limits = field(default_factory=Limits)
    # Accounts whose limits differ from `limits`: `[accounts.NAME]` in the config file
    # sets any `Limits` field for that account, the rest coming from `[limits]`.
    accounts: dict[str, Limits] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        config_file: str | None = None,
        environ: dict[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults < config file < `BURROW_*` environment < explicit overrides (flags)."""
        values: dict[str, Any] = {}
        limits: dict[str, Any] = {}
        accounts: dict[str, dict[str, Any]] = {}
        if config_file is not None:
            values, limits, accounts = _read_toml(Path(config_file))
        env = os.environ if environ is None else environ
        for name in ("host", "port", "backend", "workers", "log_level", "auth"):
            if f"BURROW_{name.upper()}" in env:
                values[name] = env[f"BURROW_{name.upper()}"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        base = Limits(**_typed(Limits, limits))
        overrides = {
            name: dataclasses.replace(base, **_typed(Limits, override))
            for name, override in accounts.items()
        }
        return cls(**_typed(cls, values), limits=base, accounts=overrides)


Sections = tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]


def _read_toml(path: Path) -> Sections:
    """The `[server]`, `[limits]` and `[accounts.NAME]` tables of a config file."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InvalidRequest(f"cannot read config file {path}: {error}") from error
    unknown = set(document) - {"server", "limits", "accounts"}
    if unknown:
        raise InvalidRequest(f"unknown sections in {path}: {', '.join(sorted(unknown))}")
    accounts = document.get("accounts", {})
    if not all(isinstance(table, dict) for table in accounts.values()):
        raise InvalidRequest(f"{path}: each [accounts.NAME] must be a table of limits")
    return dict(document.get("server", {})), dict(document.get("limits", {})), accounts


def _typed(kind: type[Any], values: dict[str, Any]) -> dict[str, Any]:
    """Check names and coerce strings (from the environment) to each field's type."""
    fields = {f.name: f for f in dataclasses.fields(kind) if f.name not in ("limits", "accounts")}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in fields:
            raise InvalidRequest(f"unknown setting {name!r}")
        wanted = fields[name].type
        try:
            if wanted == "int":
                out[name] = int(value)
            elif wanted == "float":
                out[name] = float(value)
            elif wanted == "bool":
                out[name] = value if isinstance(value, bool) else str(value).lower() == "true"
            else:
                out[name] = str(value)
        except ValueError as error:
            kind_name = {"int": "an integer", "float": "a number"}[str(wanted)]
            raise InvalidRequest(f"setting {name!r} must be {kind_name}: {value!r}") from error
    return out
