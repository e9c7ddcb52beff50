"""The server's signing secret: what every key's signed URLs are signed with, and its
SQS secret access key, are derived from it (`keys.signing_key`, `keys.sqs_secret`), and
it is kept out of the key file, so that the key file alone lets no one make a signed URL
or sign an SQS request.

The secret is a file's text, without surrounding whitespace: at least 32 bytes. By
default it is `signing.secret` next to the key file, made (256 random bits, mode 0600)
the first time the server starts without one; a file given instead must exist.
Replacing it rotates it: every signed URL made with the old one stops working, and every
key's SQS secret changes.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path

from burrow.errors import ConfigError

logger = logging.getLogger(__name__)

FILE_NAME = "signing.secret"
MIN_BYTES = 32
MAKE_ONE = "head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE"


def default_path(key_file: Path) -> Path:
    return key_file.parent / FILE_NAME


def load(path: Path) -> bytes:
    """The secret in `path`; ConfigError if it is missing, unreadable or too short."""
    try:
        secret = path.read_bytes().strip()
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError as error:
        raise ConfigError(f"cannot read the signing secret {path}: {error.strerror}") from error
    if len(secret) < MIN_BYTES:
        raise ConfigError(
            f"the signing secret {path} holds {len(secret)} bytes; it needs {MIN_BYTES} "
            f"or more (make one: {MAKE_ONE})"
        )
    if mode & 0o077:
        logger.warning("the signing secret %s is readable by others (mode %03o)", path, mode)
    return secret


def of_server(key_file: Path, given: Path | None) -> bytes:
    """The secret of a server with this key file: the file `given` (which must exist), or
    by default the one next to the key file, made if there is none. Its path is logged."""
    path = given or default_path(key_file)
    made = given is None and not path.exists() and _create(path)
    secret = load(path)
    if made:
        logger.warning(
            "made a new signing secret %s (mode 0600); servers that are to accept each "
            "other's signed URLs and SQS credentials need the same one",
            os.path.abspath(path),
        )
    else:
        logger.info("signed URLs are signed with the secret in %s", os.path.abspath(path))
    return secret


def _create(path: Path) -> bool:
    """Write a new secret, readable by the owner only; False if another process made one
    meanwhile. The file appears whole (a link to a finished file) or not at all."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    except OSError as error:
        raise ConfigError(f"cannot make the signing secret {path}: {error.strerror}") from error
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return False
    except OSError as error:
        raise ConfigError(f"cannot make the signing secret {path}: {error.strerror}") from error
    finally:
        os.unlink(temporary)
    return True
