"""Reading and writing files that hold secrets: mode 0600, never overwritten, never logged."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path

from renkei.errors import ConfigurationError

__all__ = ["read_secret_file", "write_secret_file"]

logger = logging.getLogger(__name__)


def write_secret_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file at ``path`` with mode 0600, atomically.

    The bytes go to a temporary file in the same directory first and are then hard-linked
    into place, so a crash never leaves a half-written key behind, and an existing file is
    never replaced (a lost master secret or agency key orphans every code or seal made
    with it). A missing parent directory is created with mode 0700.

    :raises ConfigurationError: the file exists or cannot be written.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        # mkstemp already creates 0600; fchmod states it regardless of platform and umask.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError as exc:
            raise ConfigurationError(f"{path} already exists; refusing to overwrite it") from exc
        except OSError as exc:
            raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def read_secret_file(path: Path) -> bytes:
    """Read a secret file, warning (in the log) when group or others may read it.

    :raises ConfigurationError: the file is missing or unreadable.
    """
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # Warn rather than refuse: mounted secrets (Kubernetes, systemd credentials) are
        # often group-readable by design, and the operator knows their machine.
        logger.warning("%s is accessible to group or others (mode %o)", path, mode & 0o777)
    return data
