"""The life cycle every agency-side class shares: start, (run in the background,) stop.

``async with thing:`` starts it and stops it on exit. A :class:`Service` only connects
and disconnects (the registry publisher); a :class:`BackgroundService` also reads in the
background between the two and, on exit, raises the error that stopped the reading, if
one did. The inbox reader and the services that use it (client, provider, subscriber)
are driven that way.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["BackgroundService", "Service"]


class Service:
    """Something that connects and disconnects: ``async with`` is start, then stop."""

    async def start(self) -> None:
        """Connect."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Disconnect."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class BackgroundService(Service):
    """Something that connects, reads in the background and disconnects."""

    def run_in_background(self) -> None:
        """Start reading in a background task (a no-op if nothing is to be read here)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop reading and disconnect; raise the error that stopped the reading, if any."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        self.run_in_background()
        return self
