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


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what one request may ask; anything beyond is a 4xx, never stored."""

    max_body_bytes: int = 256 * 1024
    max_batch_bytes: int = 4 * 1024 * 1024
    max_batch_messages: int = 1000
    max_id_length: int = 255
    max_limit: int = 1000
    max_wait: int = 300
    max_ttl: int = 1_209_600  # 14 days
    max_hide: int = 1_209_600
    default_ttl: int = 600
    body_timeout: float = 30.0  # seconds to receive a whole request body (slow senders: 408)
    # Token buckets: requests per second (0 = unlimited) and the burst allowed above it.
    rate_per_account: float = 0
    burst_per_account: int = 100
    rate_per_credential: float = 0
    burst_per_credential: int = 100


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
        if config_file is not None:
            values, limits = _read_toml(Path(config_file))
        env = os.environ if environ is None else environ
        for name in ("host", "port", "backend", "workers", "log_level", "auth"):
            if f"BURROW_{name.upper()}" in env:
                values[name] = env[f"BURROW_{name.upper()}"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**_typed(cls, values), limits=Limits(**_typed(Limits, limits)))


def _read_toml(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InvalidRequest(f"cannot read config file {path}: {error}") from error
    unknown = set(document) - {"server", "limits"}
    if unknown:
        raise InvalidRequest(f"unknown sections in {path}: {', '.join(sorted(unknown))}")
    return dict(document.get("server", {})), dict(document.get("limits", {}))


def _typed(kind: type[Any], values: dict[str, Any]) -> dict[str, Any]:
    """Check names and coerce strings (from the environment) to each field's type."""
    fields = {f.name: f for f in dataclasses.fields(kind) if f.name != "limits"}
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
            raise InvalidRequest(f"setting {name!r} must be a {wanted}: {value!r}") from error
    return out
