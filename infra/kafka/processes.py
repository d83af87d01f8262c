"""The broker processes: spawning them, telling whether one is ours and alive, ports."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from renkei.errors import PortInUseError

__all__ = ["accepts", "alive", "is_our_broker", "require_free", "spawn"]


def spawn(command: list[str], console: Path) -> int:
    """Start ``command`` in a new session with its output appended to ``console``."""
    # posix_spawn in a new session: the broker outlives the `renkei kafka up` that
    # started it, and no Popen object is left to warn about a child still running.
    return os.posix_spawn(
        command[0],
        command,
        dict(os.environ),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(console), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    # Reap it if it is our own child that has exited, so it does not linger as a zombie.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (reaped later) counts as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def is_our_broker(pid: int | None, properties: Path) -> bool:
    """True if ``pid`` is alive and is the broker started with ``properties`` (not a reused PID)."""
    if pid is None or not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(properties).encode() in cmdline


def require_free(port: int) -> None:
    """Raise :class:`PortInUseError` unless ``port`` on 127.0.0.1 can be listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As Kafka itself does: connections of a stopped broker lingering in TIME_WAIT
        # must not count as "in use"; a live listener still does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on 127.0.0.1 is already in use: stop what holds it, "
                f"or choose other ports with `renkei kafka up --port N`"
            ) from exc


def accepts(port: int) -> bool:
    """Whether the port takes TCP connections yet (a cheap probe before a Kafka client)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
