"""``renkei top``: a live dashboard of the hub workers, scraped from their ``/metrics``.

It reads each worker's health port directly, so it works with no Prometheus running;
the numbers are the metric catalogue's (docs/operations.md, "renkei top").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from renkei.errors import ConfigurationError

from ._common import console, friendly_errors

__all__ = ["top"]


def _resolver(targets: list[str] | None, home: Path) -> Callable[[], list[str]]:
    """What to scrape each refresh: the ``--target`` list, else the file_sd list.

    The file is read again every refresh, as Prometheus does, so workers that
    ``renkei ops`` adds appear without restarting the dashboard.
    """
    from renkei.ops.scrape import parse_target, read_targets, targets_file

    if targets:
        fixed = [parse_target(t) for t in targets]
        return lambda: fixed
    path = targets_file(home)
    if not path.exists():
        raise ConfigurationError(
            f"no targets: pass --target HOST:PORT (a worker's health port), or list them "
            f"in {path} (`renkei ops` writes it)"
        )
    read_targets(path)  # a broken file is an error now, not a blank dashboard later
    return lambda: read_targets(path)


async def _run(
    resolve: Callable[[], list[str]], interval_s: float, once: bool, stage: str, out: Console
) -> None:
    import aiohttp
    from rich.live import Live

    from renkei.ops.scrape import scrape_all
    from renkei.ops.top import compute_frame
    from renkei.ops.top_view import render_frame

    # A scrape may take most of an interval, never more: the next refresh is due.
    timeout_s = max(0.1, min(interval_s, 5.0))
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        previous = await scrape_all(session, resolve(), timeout_s)
        if once:
            # Rates need two scrapes: wait one interval, then print the frame they make.
            await asyncio.sleep(interval_s)
            current = await scrape_all(session, resolve(), timeout_s)
            frame = render_frame(compute_frame(previous, current, stage), interval_s)
            # Piped into a script, rich would assume 80 columns and truncate the table.
            (out if out.is_terminal else Console(width=160, highlight=False)).print(frame)
            return
        first = render_frame(compute_frame({}, previous, stage), interval_s)
        with Live(first, console=out, screen=True, auto_refresh=False) as live:
            due = loop.time()
            while True:
                # Refreshes keep to the clock; a slow scrape delays one, not all after it.
                due = max(due + interval_s, loop.time())
                await asyncio.sleep(due - loop.time())
                current = await scrape_all(session, resolve(), timeout_s)
                live.update(render_frame(compute_frame(previous, current, stage), interval_s))
                live.refresh()
                previous = current


@friendly_errors
def top(
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            metavar="HOST:PORT",
            help="A worker's health port (repeat for each worker).",
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between refreshes (and rate windows).")
    ] = 1.0,
    once: Annotated[
        bool, typer.Option(help="Print one frame (two scrapes an interval apart) and exit.")
    ] = False,
    stage: Annotated[
        str, typer.Option(help="Stage of renkei_hub_stage_seconds for the p50/p99 columns.")
    ] = "poll_to_commit",
    home: Annotated[
        Path, typer.Option(help="RENKEI_HOME (for the targets file).", envvar="RENKEI_HOME")
    ] = Path(".renkei"),
) -> None:
    """Live dashboard of every hub worker, read from their /metrics (no Prometheus needed).

    Without --target it scrapes the workers listed in
    $RENKEI_HOME/ops/prometheus/targets.json. Ctrl-C quits.
    """
    resolve = _resolver(target, home)
    try:
        asyncio.run(_run(resolve, interval, once, stage, console))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
