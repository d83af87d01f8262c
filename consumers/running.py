"""The life cycle every agency-side class shares: start, run in the background, stop.

``async with thing:`` starts it, lets it read in the background and stops it on exit
(raising the error that stopped it, if one did). The inbox reader and the services that
use it (client, provider, subscriber) are all driven this way.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["BackgroundService"]


class BackgroundService:
    """Something that connects, reads in the background and disconnects."""

    async def start(self) -> None:
        """Connect."""
        raise NotImplementedError

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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
