"""Sending Kafka admin requests that aiokafka's admin client does not offer.

aiokafka 0.14 speaks the Kafka protocol for ACLs (DescribeAcls, CreateAcls, DeleteAcls)
but only one binding per request and with no client method, and not at all for SCRAM
credentials (AlterUserScramCredentials, DescribeUserScramCredentials). Its protocol
building blocks (``Schema``, ``CompactArray``…) and its client's ``send`` are enough to
speak them ourselves, without a JVM per call. :func:`admin_client` opens that client;
:func:`single_version` wraps one request version so the client can send it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from renkei.errors import ConfigurationError

__all__ = ["admin_client", "broker_ids", "raise_for_error", "single_version", "to_dict"]


@asynccontextmanager
async def admin_client(kafka: dict[str, Any]) -> AsyncIterator[Any]:
    """A bootstrapped ``AIOKafkaClient`` for ``kafka`` (``KafkaSettings.kafka_kwargs()``)."""
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(**kafka)
    try:
        await client.bootstrap()
        yield client
    finally:
        await client.close()


def broker_ids(client: Any) -> list[int]:
    """Every broker the client's metadata lists."""
    return sorted(b.nodeId for b in client.cluster.brokers())


def single_version(struct_class: type[Any], **fields: Any) -> Any:
    """A ``Request`` that always sends ``struct_class`` (one version) with ``fields``.

    Kafka 4 still accepts every version we send (checked by the integration tests), so
    there is nothing to negotiate; the broker refuses an unsupported one with a clear error.
    """
    from aiokafka.protocol.api import Request

    values = [fields[name] for name in struct_class.SCHEMA.names]

    class _Fixed(Request[struct_class]):  # type: ignore[misc]  # aiokafka is untyped: Request is Any
        API_KEY = struct_class.API_KEY

        def build(self, request_struct_class: type[Any]) -> Any:
            return request_struct_class(*values)

    return _Fixed()


def to_dict(struct: Any) -> dict[str, Any]:
    """A response struct as nested dicts (aiokafka's ``to_object``)."""
    result: dict[str, Any] = struct.to_object()
    return result


def raise_for_error(what: str, code: int, message: str | None) -> None:
    """Turn a non-zero Kafka error code into a :class:`ConfigurationError` naming it."""
    if code == 0:
        return
    from aiokafka.errors import for_code

    name = for_code(code).__name__
    detail = f": {message}" if message else ""
    raise ConfigurationError(f"{what}: Kafka error {code} ({name}){detail}")
