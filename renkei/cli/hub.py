"""``renkei hub``: run one hub worker (a faust worker) until SIGTERM or Ctrl-C."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import friendly_errors

__all__ = ["hub"]


@friendly_errors
def hub(
    loglevel: Annotated[str, typer.Option(help="Log level of the worker.")] = "info",
) -> None:
    """Run a hub worker. Settings come from RENKEI_* and RENKEI_HUB_* (docs/operations.md)."""
    import faust

    from hub_stream.app import create_app

    app = create_app()
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
