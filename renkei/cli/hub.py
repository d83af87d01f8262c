"""``renkei hub``: run one hub worker (a faust worker) until SIGTERM or Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import friendly_errors

__all__ = ["hub"]


@friendly_errors
def hub(
    loglevel: Annotated[str, typer.Option(help="Log level of the worker.")] = "info",
    ready_file: Annotated[
        Path | None,
        typer.Option(
            "--ready-file",
            help="Write this file (JSON, atomically) once the hub is ready; removed on stop.",
            envvar="RENKEI_HUB_READY_FILE",
        ),
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(
            "--health-port",
            help="Serve GET /healthz on this port: 200 when ready, else 503.",
            envvar="RENKEI_HUB_HEALTH_PORT",
        ),
    ] = None,
    health_host: Annotated[
        str,
        typer.Option(help="Address of the health endpoint.", envvar="RENKEI_HUB_HEALTH_HOST"),
    ] = "127.0.0.1",
) -> None:
    """Run a hub worker. Settings come from RENKEI_* and RENKEI_HUB_* (docs/operations.md).

    Exits non-zero when the hub halts itself (another cluster answers, its producer was
    fenced by a second worker with the same id).
    """
    import faust

    from hub_stream.app import create_app
    from hub_stream.settings import HubSettings

    overrides: dict[str, Any] = {"health_host": health_host}
    if ready_file is not None:
        overrides["ready_file"] = ready_file
    if health_port is not None:
        overrides["health_port"] = health_port
    app = create_app(settings=HubSettings(**overrides))
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
