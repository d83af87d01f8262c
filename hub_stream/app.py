"""The hub as a faust-streaming application.

faust runs the worker: its lifecycle, signals, logging, and the control plane — an agent
that applies directory changes (agencies, keys, the scenario table) as operators publish
them. The data plane is :class:`.worker.HubService`, started by the app: it consumes and
produces in Kafka transactions of whole batches, because faust's per-event agents cannot
reach the hub's throughput target and its exactly-once path has open defects
(``docs/architecture.md`` explains both).

Each worker's faust app id (``<group id>-control-<worker id>``, so ``<prefix>hub-control-
worker-1`` by default: its consumer group, within the hub principal's ACLs) includes its
worker id, so every worker reads the whole directory rather than sharing its one
partition with the others. faust connects with the same TLS and SASL settings as the
data plane (``KafkaSettings``). faust's data folder (``<app id>-data``, which faust would
otherwise create in the current directory) lives under ``$RENKEI_HOME/hub/``.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.auth import Credentials, SASLCredentials, SSLCredentials

from renkei.settings import KafkaSettings

from .settings import HubSettings
from .worker import HubService

__all__ = ["create_app", "faust_credentials"]


def faust_credentials(kafka: KafkaSettings) -> Credentials | None:
    """``KafkaSettings``' TLS and SASL settings as faust's ``broker_credentials``.

    :raises ConfigurationError: as :meth:`KafkaSettings.kafka_kwargs`.
    """
    options = kafka.kafka_kwargs()
    context = options.get("ssl_context")
    if "sasl_mechanism" in options:
        return SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            ssl_context=context,
            mechanism=options["sasl_mechanism"],
        )
    return SSLCredentials(context) if context is not None else None


def create_app(
    kafka: KafkaSettings | None = None, settings: HubSettings | None = None
) -> faust.App:
    """The faust app of one hub worker."""
    kafka = kafka or KafkaSettings()
    settings = settings or HubSettings()
    bootstrap = kafka.resolved_bootstrap()
    app_id = settings.control_app_id
    data_home = kafka.home.absolute() / "hub"
    data_home.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    app = faust.App(
        app_id,
        broker=[f"kafka://{server}" for server in bootstrap.split(",")],
        broker_credentials=faust_credentials(kafka),
        store="memory://",
        # faust formats the path with its config: a brace in RENKEI_HOME must stay one.
        datadir=str(data_home / f"{app_id}-data").replace("{", "{{").replace("}", "}}"),
        web_enabled=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
    )
    service = HubService(kafka.kafka_kwargs(), settings)
    directory = app.topic(
        service.topics.directory, key_serializer="raw", value_serializer="raw", internal=False
    )

    @app.agent(directory)
    async def directory_updates(stream: Any) -> None:
        # Only entries the pinned operators' key signed are applied (.directory_feed).
        async for event in stream.events():
            message = event.message
            where = f"{message.partition}:{message.offset}"
            service.apply_directory(event.key, event.value, where)

    @app.task  # type: ignore[untyped-decorator]  # faust ships no type hints for it
    async def start_data_plane() -> None:
        await app.add_runtime_dependency(service)

    app.hub_service = service  # type: ignore[attr-defined]  # for tests and the CLI's status
    return app
