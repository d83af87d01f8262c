"""``renkei demo [--secure] [--ops]``: start Kafka unless one is given, then run the demo on it.

With ``--ops`` a Prometheus under ``RENKEI_HOME`` (the one running, else started) scrapes
the demo's hub and is left running afterwards, to be looked at (``renkei ops down``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from renkei.settings import KafkaSettings

from ._common import console, friendly_errors

__all__ = ["demo"]


@friendly_errors
def demo(
    people: Annotated[int, typer.Option(help="Size of the synthetic population.")] = 300,
    secure: Annotated[
        bool,
        typer.Option(
            "--secure",
            help="Run on the local secure cluster (TLS + SASL/SCRAM-SHA-512, ACLs), started "
            "if needed: the admin syncs the run's ACLs and every actor logs in as its own "
            "principal. Ignores RENKEI_BOOTSTRAP.",
        ),
    ] = False,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            help="First broker port of a cluster started here.",
            envvar="RENKEI_KAFKA_PORT",
        ),
    ] = 19092,
    prefix: Annotated[
        str | None,
        typer.Option(help="Topic prefix of the run; default demo-<time>-<hex>."),
    ] = None,
    rate: Annotated[
        float,
        typer.Option(
            min=0,
            help="Exchanges of the main batch offered per second (0: all at once, a burst "
            "whose latency is mostly queueing).",
        ),
    ] = 10.0,
    hub_in_process: Annotated[
        bool,
        typer.Option(
            "--hub-in-process",
            help="Run the hub worker in the demo's own event loop rather than a process of "
            "its own (measured the faster only on a heavily loaded machine).",
        ),
    ] = False,
    ops: Annotated[
        bool,
        typer.Option(
            "--ops",
            help="Prometheus (Debian's, `renkei ops up`) scrapes the hub's /metrics during "
            "the run and stays up afterwards; `renkei ops down` stops it.",
        ),
    ] = False,
    ops_port: Annotated[
        int, typer.Option("--ops-port", help="Prometheus's port if --ops starts it.")
    ] = 9090,
) -> None:
    """Registry, hub and agencies exchanging data on a local Kafka, with a summary."""
    from infra.kafka import LocalCluster
    from renkei.demo import Connections, run_demo, secure_cluster
    from renkei.demo.ops import DemoOps, demo_prometheus
    from renkei.operator.directory_file import load_directory_file

    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    settings = KafkaSettings()
    home = settings.home
    watch: DemoOps | None = None
    if ops:  # first: a missing prometheus binary fails before Kafka is started for nothing
        prometheus, started = demo_prometheus(settings.home, ops_port)
        watch = DemoOps(prometheus)
        console.print(f"Prometheus {'started' if started else 'running'} at {prometheus.url}")
    if secure:
        cluster = secure_cluster(settings.home, port, load_directory_file())
        home = cluster.home.parent
        console.print(f"starting (or joining) the secure Kafka in {cluster.home} …")
        bootstrap = cluster.up(timeout_s=120)
        stop = "renkei kafka down"
        if home != settings.home.resolve():
            stop = f"RENKEI_HOME={home} {stop}"
        console.print(f"secure Kafka at {bootstrap} — `{stop}` stops it", soft_wrap=True)
        connections = Connections.secure(home)
    else:
        if not settings.bootstrap:
            console.print("starting Kafka (renkei kafka up) …")
            bootstrap = LocalCluster(home / "kafka", base_port=port).up(timeout_s=120)
            console.print(f"Kafka at {bootstrap} — `renkei kafka down` stops it")
            settings = settings.model_copy(update={"bootstrap": bootstrap})
        connections = Connections.shared(settings)
    asyncio.run(run_demo(connections, home, people, prefix=prefix, console=console,
                         rate=rate or None, hub_in_process=hub_in_process,
                         ops=watch))  # fmt: skip
