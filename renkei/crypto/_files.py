"""Files that hold keys: private ones 0600 in 0700 folders, public ones 0644, never replaced.

What happens when a private key file is opened with loose permissions (``docs/security.md``,
"Key files")::

    others may read or write it, or the group may write it   refused (ConfigurationError)
    the group may read it                                     InsecurePermissionsWarning
    only the owner                                            read

Anyone who can read a key can sign or open seals as its owner, and anyone who can write
one can swap in a key they know, so those are refused, as OpenSSH refuses such keys. A
group-readable file is allowed with a warning: Kubernetes secret volumes with ``fsGroup``
and systemd credentials are group-readable by design.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import warnings
from pathlib import Path

from renkei.errors import ConfigurationError

__all__ = [
    "InsecurePermissionsWarning",
    "ensure_private_dir",
    "read_secret_file",
    "write_public_file",
    "write_secret_file",
]

_SECRET_FILE_MODE = 0o600
_PUBLIC_FILE_MODE = 0o644
_PRIVATE_DIR_MODE = 0o700


class InsecurePermissionsWarning(UserWarning):
    """A key file or key folder that someone other than its owner may read."""


def ensure_private_dir(path: Path) -> None:
    """Make sure the key folder ``path`` exists; a folder created here gets mode 0700.

    Missing parents are created with the default mode: only the folder itself holds keys.
    An existing folder is left as it is (it may be the operator's choice, e.g. a mounted
    volume), with an :class:`InsecurePermissionsWarning` if group or others may enter it.

    :raises ConfigurationError: ``path`` exists and is not a folder, or cannot be created.
    """
    try:
        path.mkdir(mode=_PRIVATE_DIR_MODE, parents=True)
    except FileExistsError:
        if not path.is_dir():
            raise ConfigurationError(f"{path} exists and is not a folder") from None
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.warn(
                f"key folder {path} is open to group or others (mode {mode:o}); `chmod 700 {path}`",
                InsecurePermissionsWarning,
                stacklevel=2,
            )
        return
    except OSError as exc:
        raise ConfigurationError(f"cannot create {path}: {exc.strerror}") from exc
    # mkdir's mode passes through the umask; state it regardless.
    path.chmod(_PRIVATE_DIR_MODE)


def write_secret_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file at ``path`` with mode 0600, atomically.

    The bytes go to a temporary file in the same directory first and are then hard-linked
    into place, so a crash never leaves a half-written key behind, and an existing file is
    never replaced (a lost master secret or agency key orphans every code or seal made
    with it). A missing parent directory is created with mode 0700.

    :raises ConfigurationError: the file exists or cannot be written.
    """
    if not path.parent.is_dir():
        ensure_private_dir(path.parent)
    _write_new(path, data, _SECRET_FILE_MODE)


def write_public_file(path: Path, data: bytes) -> bool:
    """Write public ``data`` (a key bundle, a certificate request) to ``path``, mode 0644.

    Like :func:`write_secret_file`, it never replaces a file, except that writing the same
    bytes again is not an error, so exporting a public key twice is harmless.

    :returns: whether a file was written (``False``: it already held these bytes).
    :raises ConfigurationError: ``path`` holds something else, or cannot be written.
    """
    if not path.parent.is_dir():
        ensure_private_dir(path.parent)
    try:
        _write_new(path, data, _PUBLIC_FILE_MODE)
    except ConfigurationError:
        with contextlib.suppress(OSError):
            if path.read_bytes() == data:
                return False
        raise
    return True


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from exc
    tmp = Path(tmp_name)
    try:
        # mkstemp already creates 0600; fchmod states the mode regardless of platform and umask.
        os.fchmod(fd, mode)
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
    """Read a private key file, checking its permissions first (see the module docstring).

    :raises ConfigurationError: the file is missing or unreadable, or others may read it,
        or anyone but its owner may write it.
    """
    try:
        with path.open("rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            if mode & (stat.S_IRWXO | stat.S_IWGRP):
                # Checked before reading: the key never enters this process.
                raise ConfigurationError(
                    f"{path} is accessible to others or writable by its group (mode {mode:o}); "
                    f"refusing to use it: `chmod 600 {path}`"
                )
            data = handle.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    if mode & stat.S_IRWXG:
        warnings.warn(
            f"{path} is readable by its group (mode {mode:o})",
            InsecurePermissionsWarning,
            stacklevel=2,
        )
    return data
