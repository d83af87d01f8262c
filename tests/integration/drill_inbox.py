"""An agency's inbox reader in a process of its own, for the consumer-kill drill.

``python -m tests.integration.drill_inbox CONFIG.json`` reads ``agency.<id>.in`` with an
:class:`~consumers.inbox.InboxReader` in a consumer group of the agency's
(``<prefix>agency.<id>.<name>``), committing after each batch, as the SDK does. It acts
on every :class:`~schemas.models.AttributeResponse` whose request id starts with the
drill's tag the way the contract asks an agency to ("de-duplicate on
``header.message_id``, commit after applying"):

* ``deliveries``: one line ``<message id> <request id>`` per answer handed over, every
  time it is handed over (the SDK's at-least-once across a crash shows here);
* ``applied``: one line per answer *applied*, keyed on the message id and kept on disk,
  so an answer handed over again after a restart is not applied twice.

With ``hang_after`` N it hangs inside the handler of the N-th answer, after recording it
and before returning, so its batch is never committed: the test SIGKILLs it there, in
the middle of a batch. ``started`` is written once the reader holds its positions.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from consumers.inbox import InboxReader
from renkei.topics import Topics
from schemas.models import AttributeResponse

__all__ = ["main"]


async def run(config: dict[str, Any]) -> None:
    """Read and act until killed (or hung at ``hang_after``)."""
    out = Path(config["out"])
    applied_file = out / "applied"
    # The agency's own durable memory of what it applied: it outlives the process.
    applied_ids = (
        {line.split()[0] for line in applied_file.read_text().splitlines()}
        if applied_file.exists()
        else set()
    )
    tag: str = config["tag"]
    hang_after: int | None = config.get("hang_after")
    handed = 0
    never = asyncio.Event()  # never set: the handler that waits on it hangs
    with (
        (out / "deliveries").open("a", buffering=1) as deliveries,
        applied_file.open("a", buffering=1) as applied,
    ):

        async def on_answer(answer: AttributeResponse) -> bool:
            nonlocal handed
            if not answer.request_id.startswith(tag):
                return False  # another drill's answer: handled by being ignored
            line = f"{answer.header.message_id} {answer.request_id}\n"
            deliveries.write(line)  # line-buffered: on disk before a SIGKILL
            if answer.header.message_id not in applied_ids:
                applied_ids.add(answer.header.message_id)
                applied.write(line)
            handed += 1
            if handed == hang_after:
                await never.wait()
            return True

        reader = InboxReader(
            config["agency"], {"bootstrap_servers": config["bootstrap"]},
            Topics(config["prefix"], partitions=config["partitions"]),
            group_id=config["group"], start_at="earliest", max_batch=config["max_batch"],
            hub_public_key=bytes.fromhex(config["hub_key"]),
        )  # fmt: skip
        reader.route(AttributeResponse, on_answer)
        await reader.start()
        try:
            (out / "started").write_text("started\n")
            await reader.run()
        finally:
            await reader.stop()


def main() -> None:
    """Run with the JSON configuration named on the command line."""
    asyncio.run(run(json.loads(Path(sys.argv[1]).read_text())))


if __name__ == "__main__":
    main()
