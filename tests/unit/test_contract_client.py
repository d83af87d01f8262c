"""A client built from docs/contract.md and schemas/avro/ alone, as another language would.

Nothing of the project's codec, loader or signing code is used to build the bytes: the
schema is resolved from the ``.avsc`` files as "The fingerprint" step 1 says, the body is
written by a generic Avro library (fastavro, standing in for Java's or Go's), the
fingerprint is the page's Rabin algorithm, and the signature is plain Ed25519 over the
page's signing input. The hub's codec must then read the message and verify it, and its
own encoding must be the same bytes.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from renkei.envelope import verify_message
from schemas import AttributeRequest, HpkeSuite, default_codec

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro"
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def resolve(name: str) -> dict[str, Any]:
    """Inline every named type at its first use, by full name afterwards (step 1)."""
    defined: set[str] = set()

    def walk(schema: Any) -> Any:
        if isinstance(schema, str):
            if schema in PRIMITIVES or schema in defined:
                return schema
            return walk(json.loads((SCHEMAS / f"{schema}.avsc").read_text(encoding="utf-8")))
        if isinstance(schema, list):
            return [walk(branch) for branch in schema]
        out = dict(schema)
        if schema["type"] in ("record", "enum", "fixed"):
            defined.add(f"{schema['namespace']}.{schema['name']}")
        if schema["type"] == "record":
            out["fields"] = [{**f, "type": walk(f["type"])} for f in schema["fields"]]
        elif schema["type"] == "array":
            out["items"] = walk(schema["items"])
        return out

    resolved: dict[str, Any] = walk(name)
    return resolved


def rabin(data: bytes) -> bytes:
    """The page's CRC-64-AVRO, little-endian."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


def single_object(schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
    canonical = fastavro.schema.to_parsing_canonical_form(schema)
    out = io.BytesIO()
    out.write(b"\xc3\x01" + rabin(canonical.encode("utf-8")))
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), datum)
    return out.getvalue()


def test_an_attribute_request_built_from_the_page_is_read_and_verified_by_the_hub() -> None:
    schema = resolve("jp.renkei.AttributeRequest")
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    datum: dict[str, Any] = {
        "header": {
            "message_id": "00112233445566778899aabbccddeeff",
            "correlation_id": None,
            "sender": "city-shinagawa",
            "sent_at": datetime(2025, 4, 1, 9, 30, 15, 123000, tzinfo=UTC),
            "signature": b"",
        },
        "request_id": "req-1",
        "requester_link_code": "aedzti3y2sf4nrilnemq2ojdtrc4zsdpasrv7beyidietvgssrxms",
        "provider": "jps",
        "scenario_id": "S003",
        "items": ["pension.benefit_status"],
        "reply_public_key": bytes(range(32, 64)),
        "hpke_suite": "X25519",
        "deadline": datetime(2025, 4, 1, 9, 31, 15, 123000, tzinfo=UTC),
    }
    # Signatures: sign the encoding with an empty signature, then send it with the signature
    signing_input = single_object(schema, datum)
    datum["header"]["signature"] = key.sign(signing_input)
    value = single_object(schema, datum)

    codec = default_codec()
    message = codec.decode_as(value, AttributeRequest)
    assert message.hpke_suite is HpkeSuite.X25519
    assert message.items == ("pension.benefit_status",)
    assert codec.signing_payload(message) == signing_input
    verify_message(message, key.public_key().public_bytes_raw(), codec)
    assert codec.encode(message) == value
