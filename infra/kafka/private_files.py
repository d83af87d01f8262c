"""Files only their owner may read: 0600 files in 0700 folders.

The secure cluster's passwords, private keys and the broker configuration that holds the
broker's own password. ``renkei.crypto`` has the same rule for key files, but ``infra``
sits below it in the layer order and cannot import it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from renkei.errors import ConfigurationError

__all__ = ["ensure_private_dir", "read_private", "write_private"]


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if missing and make the folder itself mode 0700."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically (temporary file, then rename).

    The file never exists with looser permissions, not even for an instant: the
    temporary file is created 0600 by ``mkstemp``.
    """
    ensure_private_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def read_private(path: Path) -> bytes:
    """Read a 0600 file; refuse one that group or others may read or write.

    :raises ConfigurationError: missing, unreadable, or open to others.
    """
    try:
        with path.open("rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigurationError(
                    f"{path} is open to group or others (mode {mode:o}): `chmod 600 {path}`"
                )
            return handle.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
