"""Files no process may write, root included: the immutable attribute (`chattr +i`).

Tests run as root in CI, where a mode of 0444 stops nobody, and a file opened before
its mode changed stays writable through that descriptor anyway. An immutable file
refuses both: opening it for writing, and writing through a descriptor already open
(EPERM). Setting the attribute needs CAP_LINUX_IMMUTABLE and a filesystem that keeps
it (ext4, xfs, btrfs); without them the test is skipped and says why.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def unwritable(*paths: Path) -> Iterator[None]:
    """Make `paths` immutable for the duration of the block."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed: no way to make a file unwritable for root")
    made: list[Path] = []
    try:
        for path in paths:
            done = subprocess.run(
                [chattr, "+i", str(path)], capture_output=True, text=True, timeout=10
            )
            if done.returncode != 0:
                pytest.skip(f"cannot make {path} immutable: {done.stderr.strip()}")
            made.append(path)
        yield
    finally:
        for path in made:
            subprocess.run([chattr, "-i", str(path)], check=True, timeout=10)
