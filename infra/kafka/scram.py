"""SCRAM-SHA-512 credentials, added to a running cluster through the Admin API.

KRaft keeps SCRAM credentials in the metadata log. ``kafka-storage format --add-scram``
puts the first ones there (the broker's and the admin's: the broker needs its own before
it can talk to itself); every other principal, and every agency that joins later, is
added with AlterUserScramCredentials (API key 51), which aiokafka does not offer. The
client does the salting, as Kafka's own ``kafka-configs`` does: the broker stores only
``(salt, iterations, SaltedPassword = PBKDF2-HMAC-SHA512(password, salt, iterations))``,
never the password.

A credential is in force once every broker's metadata has it, so :func:`upsert_users`
waits until DescribeUserScramCredentials on each broker lists every user it added.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Mapping
from typing import Any

from renkei.errors import ConfigurationError

from .wire import admin_client, broker_ids, raise_for_error, single_version, to_dict

__all__ = ["ITERATIONS", "MECHANISM", "salted_password", "scram_users", "upsert_users"]

MECHANISM = "SCRAM-SHA-512"
ITERATIONS = 4096  # Kafka's minimum for SCRAM-SHA-512, as kafka-configs uses by default
_SHA512 = 2  # ScramMechanism.SCRAM_SHA_512's wire code


def salted_password(password: str, salt: bytes, iterations: int = ITERATIONS) -> bytes:
    """SCRAM's ``SaltedPassword`` (RFC 5802 ``Hi``) for SHA-512: PBKDF2, 64 bytes."""
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


def _structs() -> tuple[type[Any], type[Any]]:
    from aiokafka.protocol.api import RequestStruct, Response
    from aiokafka.protocol.types import (
        CompactArray,
        CompactBytes,
        CompactString,
        Int8,
        Int16,
        Int32,
        Schema,
        TaggedFields,
    )

    text = CompactString("utf-8")

    # aiokafka ships no type hints, so its base classes are Any to mypy.
    class AlterResponse(Response):  # type: ignore[misc]
        API_KEY = 51
        API_VERSION = 0
        SCHEMA = Schema(
            ("throttle_time_ms", Int32),
            ("results", CompactArray(
                ("user", text), ("error_code", Int16), ("error_message", text),
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )  # fmt: skip

    class AlterRequest(RequestStruct):  # type: ignore[misc]
        FLEXIBLE_VERSION = True
        API_KEY = 51
        API_VERSION = 0
        RESPONSE_TYPE = AlterResponse
        SCHEMA = Schema(
            ("deletions", CompactArray(
                ("name", text), ("mechanism", Int8), ("tags", TaggedFields),
            )),
            ("upsertions", CompactArray(
                ("name", text), ("mechanism", Int8), ("iterations", Int32),
                ("salt", CompactBytes), ("salted_password", CompactBytes), ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )  # fmt: skip

    class DescribeResponse(Response):  # type: ignore[misc]
        API_KEY = 50
        API_VERSION = 0
        SCHEMA = Schema(
            ("throttle_time_ms", Int32),
            ("error_code", Int16),
            ("error_message", text),
            ("results", CompactArray(
                ("user", text), ("error_code", Int16), ("error_message", text),
                ("credentials", CompactArray(
                    ("mechanism", Int8), ("iterations", Int32), ("tags", TaggedFields),
                )),
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )  # fmt: skip

    class DescribeRequest(RequestStruct):  # type: ignore[misc]
        FLEXIBLE_VERSION = True
        API_KEY = 50
        API_VERSION = 0
        RESPONSE_TYPE = DescribeResponse
        SCHEMA = Schema(
            ("users", CompactArray(("name", text), ("tags", TaggedFields))),
            ("tags", TaggedFields),
        )

    return AlterRequest, DescribeRequest


async def scram_users(client: Any, node_id: int) -> set[str]:
    """The users that have a SCRAM-SHA-512 credential in broker ``node_id``'s metadata."""
    _, describe = _structs()
    # A null user list means "every user".
    response = to_dict(await client.send(node_id, single_version(describe, users=None, tags={})))
    raise_for_error(
        "DescribeUserScramCredentials", response["error_code"], response["error_message"]
    )
    return {
        r["user"]
        for r in response["results"]
        if r["error_code"] == 0 and any(c["mechanism"] == _SHA512 for c in r["credentials"])
    }


async def upsert_users(
    kafka: dict[str, Any], passwords: Mapping[str, str], timeout_s: float = 30
) -> None:
    """Create or replace the SCRAM-SHA-512 credential of each user, then wait for it.

    :param kafka: aiokafka keyword arguments of a principal allowed to alter the cluster
        (the admin super user).
    :raises ConfigurationError: Kafka refused a credential, or some broker did not have
        them all within ``timeout_s``.
    """
    if not passwords:
        return
    alter, _ = _structs()
    upsertions: list[tuple[Any, ...]] = []
    for name, password in passwords.items():
        salt = secrets.token_bytes(32)
        upsertions.append((name, _SHA512, ITERATIONS, salt, salted_password(password, salt), {}))
    async with admin_client(kafka) as client:
        request = single_version(alter, deletions=[], upsertions=upsertions, tags={})
        response = to_dict(await client.send(client.get_random_node(), request))
        for result in response["results"]:
            raise_for_error(
                f"SCRAM credential of {result['user']!r}",
                result["error_code"],
                result["error_message"],
            )
        deadline = time.monotonic() + timeout_s
        for node in broker_ids(client):
            while not set(passwords) <= await scram_users(client, node):
                if time.monotonic() > deadline:
                    raise ConfigurationError(
                        f"broker {node} did not apply the SCRAM credentials within {timeout_s:g} s"
                    )
                await asyncio.sleep(0.05)
