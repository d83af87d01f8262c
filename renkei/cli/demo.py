"""``renkei demo``: start Kafka unless one is given, then run the demo on it."""

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
) -> None:
    """Registry, hub and agencies exchanging data on a local Kafka, with a summary."""
    from infra.kafka import LocalCluster
    from renkei.demo import run_demo

    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    settings = KafkaSettings()
    bootstrap = settings.bootstrap
    if not bootstrap:
        console.print("starting Kafka (renkei kafka up) …")
        bootstrap = LocalCluster(settings.home / "kafka").up(timeout_s=120)
        console.print(f"Kafka at {bootstrap} — `renkei kafka down` stops it")
    asyncio.run(run_demo(bootstrap, settings.home, people))
