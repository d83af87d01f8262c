"""A hub loop built for tests that never connect it: a handler that does nothing, and the
loop's constructor with the arguments such a test does not care about filled in."""

from __future__ import annotations

from typing import Any

from hub_stream.pipeline import TransactionalLoop

__all__ = ["NoHandler", "offline_loop"]


class NoHandler:
    """A batch handler with nothing to handle."""

    def handle(self, records: Any) -> list[Any]:
        return []

    def tick(self, now_ms: int) -> list[Any]:
        return []

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


def offline_loop(**options: Any) -> TransactionalLoop:
    """A :class:`TransactionalLoop` on an unreachable broker (``127.0.0.1:1``): its clients
    exist but are never started. ``options`` add to or override the constructor's."""
    arguments: dict[str, Any] = {
        "kafka": {"bootstrap_servers": "127.0.0.1:1"},
        "group_id": "g",
        "transactional_id": "t",
        "handler": NoHandler(),
        "replace": lambda output, partition, reason: [],
        **options,
    }
    return TransactionalLoop(**arguments)
