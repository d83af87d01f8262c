"""docs/contract.md's worked examples, recomputed from the page's own text.

Each ``<!-- example: NAME -->`` block of the contract is read here and recomputed with the
code an agency's client would mirror (and, where it matters, with an independent
implementation written from the RFC), so the page cannot drift from the code unnoticed.
When a test here fails after a deliberate change, the message shows the new value to put
in the page.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import zlib
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest
from aiokafka.partitioner import murmur2
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from stdnum.jp import in_ as stdnum_my_number

from renkei import mynumber
from renkei.crypto import SigningKey
from renkei.crypto.context import attributes_aad
from renkei.crypto.keyring import KeyRing, MasterSecret
from renkei.crypto.linkcodes import LinkCodes
from renkei.crypto.sealing import ATTRIBUTES_INFO, SealingKeyPair, decode_attributes, seal
from renkei.crypto.sealing import open as open_sealed
from renkei.envelope import sign_message, verify_message
from renkei.operator import directory_file
from renkei.operator.directory_file import parse_directory_file
from renkei.topics import Topics
from schemas import HEADER_SIZE, ErrorCode, Header, HubError, default_codec
from schemas.loader import canonical_form
from schemas.models import HpkeSuite

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
TEXT = CONTRACT.read_text(encoding="utf-8")


def block(name: str) -> str:
    """The fenced block (or table) right after ``<!-- example: NAME -->``."""
    marker = f"<!-- example: {name} -->\n"
    assert TEXT.count(marker) == 1, f"docs/contract.md has no single example {name!r}"
    rest = TEXT[TEXT.index(marker) + len(marker) :]
    if rest.startswith("|"):  # a table: up to the first line that is not a row
        return "\n".join(line for line in rest.split("\n\n", 1)[0].splitlines())
    fence = re.match(r"```[a-z]*\n(.*?)\n```\n", rest, re.DOTALL)
    assert fence, f"example {name!r} is not followed by a fenced block"
    return fence.group(1)


def hex_block(name: str) -> bytes:
    return bytes.fromhex(block(name).replace("\n", " "))


def fields(name: str) -> dict[str, str]:
    """A block of ``name: value`` lines."""
    out = {}
    for line in block(name).splitlines():
        key, value = line.split(": ", 1)
        out[key] = value
    return out


def _fix(documented: str, computed: str) -> str:
    return f"docs/contract.md says {documented}; the code gives {computed}"


# -- the HubError of the wire format and its signature -----------------------------------


def documented_hub_error() -> HubError:
    # the values the page lists in prose before the example
    header = Header(
        message_id="0123456789abcdef0123456789abcdef",
        correlation_id="fedcba9876543210fedcba9876543210",
        sender="hub",
        sent_at=datetime(2025, 4, 1, 9, 30, 15, 123000, tzinfo=UTC),
        signature=b"",
    )
    return HubError(
        header=header, code=ErrorCode.TIMEOUT, detail="no answer", request_id="req-42",
        retriable=True,
    )  # fmt: skip


def test_the_hub_error_bytes_are_the_codecs() -> None:
    documented = hex_block("hub-error-unsigned")
    computed = default_codec().signing_payload(documented_hub_error())
    assert documented == computed, _fix(documented.hex(" "), computed.hex(" "))
    assert computed == default_codec().encode(documented_hub_error())  # signature empty


def test_the_hub_error_body_is_plain_avro() -> None:
    """Any Avro library holding the schema reads the documented body, nothing else needed."""
    data = hex_block("hub-error-unsigned")
    schema = fastavro.parse_schema(default_codec().schema_for(HubError))
    body = io.BytesIO(data[HEADER_SIZE:])
    record = fastavro.schemaless_reader(body, schema, None)
    assert body.tell() == len(data) - HEADER_SIZE
    assert isinstance(record, dict)
    assert record["code"] == "TIMEOUT"
    assert record["request_id"] == "req-42"
    assert record["header"]["sent_at"] == datetime(2025, 4, 1, 9, 30, 15, 123000, tzinfo=UTC)


def _rabin(data: bytes) -> bytes:
    # the fingerprint algorithm exactly as the page writes it out
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


def test_the_canonical_form_and_its_fingerprint() -> None:
    documented = block("hub-error-canonical-form")
    computed = canonical_form(default_codec().schema_for(HubError))
    assert documented == computed, _fix(documented, computed)
    assert len(documented.encode()) == 782
    fingerprint = hex_block("hub-error-unsigned")[2:HEADER_SIZE]
    assert _rabin(documented.encode("utf-8")) == fingerprint
    assert default_codec().fingerprint(HubError) == fingerprint
    assert f"`{fingerprint.hex(' ')}`" in TEXT  # the page names it where it lists it


def test_the_signature_example() -> None:
    doc = fields("signature")
    seed = bytes.fromhex(doc["seed"])
    assert seed == bytes(range(32))
    # an Ed25519 implementation other than the project's wrapper
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    assert public.hex() == doc["public key"], _fix(doc["public key"], public.hex())
    signature = key.sign(hex_block("hub-error-unsigned"))
    assert signature.hex() == doc["signature"], _fix(doc["signature"], signature.hex())
    signed = sign_message(documented_hub_error(), SigningKey.from_bytes(seed), default_codec())
    assert signed.header.signature == signature
    value = default_codec().encode(signed)
    assert value == hex_block("hub-error-signed"), _fix("the signed value", value.hex(" "))
    assert len(value) == 173
    received = default_codec().decode(value)
    verify_message(received, public, default_codec())


# -- sealing ----------------------------------------------------------------------------


def _i2osp(value: int, width: int) -> bytes:
    return value.to_bytes(width, "big")


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block_, counter = b"", b"", 1
    while len(out) < length:
        block_ = hmac.digest(prk, block_ + info + bytes([counter]), "sha256")
        out += block_
        counter += 1
    return out[:length]


def _labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return hmac.digest(salt, b"HPKE-v1" + suite + label + ikm, "sha256")


def _labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, _i2osp(length, 2) + b"HPKE-v1" + suite + label + info, length)


def _decap_x25519(enc: bytes, private: bytes) -> bytes:
    """RFC 9180 4.1, DHKEM(X25519, HKDF-SHA256), written out independently of the library."""
    key = x25519.X25519PrivateKey.from_private_bytes(private)
    dh = key.exchange(x25519.X25519PublicKey.from_public_bytes(enc))
    suite = b"KEM" + _i2osp(0x0020, 2)
    prk = _labeled_extract(suite, b"", b"eae_prk", dh)
    context = enc + key.public_key().public_bytes_raw()
    return _labeled_expand(suite, prk, b"shared_secret", context, 32)


def _decap_xwing(enc: bytes, private: bytes) -> bytes:
    """X-Wing decapsulation from the page's formula (key stored as ML-KEM seed ‖ X25519)."""
    kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(private[:64])
    dh = x25519.X25519PrivateKey.from_private_bytes(private[64:])
    ct_x = enc[1088:]
    ss_x = dh.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    pk_x = dh.public_key().public_bytes_raw()
    return hashlib.sha3_256(kem.decapsulate(enc[:1088]) + ss_x + ct_x + pk_x + b"\\.//^\\").digest()


def _open(ids: tuple[int, int, int], shared: bytes, info: bytes, ciphertext: bytes) -> bytes:
    """RFC 9180 5.1 KeySchedule (mode_base) and 5.2 Open of sequence number 0."""
    kem_id, kdf_id, aead_id = ids
    assert kdf_id == 0x0001  # HKDF-SHA256, the only KDF of both suites
    suite = b"HPKE" + _i2osp(kem_id, 2) + _i2osp(kdf_id, 2) + _i2osp(aead_id, 2)
    context = (
        b"\x00"
        + _labeled_extract(suite, b"", b"psk_id_hash", b"")
        + _labeled_extract(suite, b"", b"info_hash", info)
    )
    secret = _labeled_extract(suite, shared, b"secret", b"")
    key_length = {0x0001: 16, 0x0002: 32}[aead_id]
    key = _labeled_expand(suite, secret, b"key", context, key_length)
    nonce = _labeled_expand(suite, secret, b"base_nonce", context, 12)
    return AESGCM(key).decrypt(nonce, ciphertext, b"")


def documented_suites() -> dict[str, tuple[int, int, int]]:
    suites = {}
    for row in block("hpke-suites").splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        name = re.match(r"`(\w+)`", cells[0])
        assert name, row
        found = [re.search(r"`(0x[0-9a-f]{4})`", cell) for cell in cells[1:4]]
        assert all(found), row
        kem, kdf, aead = (int(m.group(1), 16) for m in found if m)
        suites[name.group(1)] = (kem, kdf, aead)
    return suites


def _info(aad: bytes) -> bytes:
    label = b"renkei/attributes/v2"  # the page's label
    return len(label).to_bytes(2, "big") + label + aad


def test_the_suite_table_names_every_suite() -> None:
    suites = documented_suites()
    assert set(suites) == {s.value for s in HpkeSuite} - {"UNKNOWN"}
    assert ATTRIBUTES_INFO == b"renkei/attributes/v2"
    assert '"renkei/attributes/v2"  (20 ASCII bytes)' in TEXT


@pytest.mark.parametrize("suite", ["X25519", "MLKEM768_X25519"])
def test_the_documented_suite_ids_open_what_the_code_seals(suite: str) -> None:
    """An RFC 9180 implementation given only the page's ids and `info` opens our seals."""
    ids = documented_suites()[suite]
    pair = SealingKeyPair.generate(suite)  # type: ignore[arg-type]  # a documented suite name
    aad = attributes_aad(
        scenario_id="S003", requester="city-shinagawa", provider="jps", request_id="r-1",
        items=["pension.benefit_status"], reply_public_key=pair.public_bytes,
    )  # fmt: skip
    plaintext = b'{"pension.benefit_status":"paid"}'
    enc, ciphertext = seal(pair.suite, pair.public_bytes, plaintext, aad=aad)
    decap = _decap_x25519 if suite == "X25519" else _decap_xwing
    shared = decap(enc, pair.private_bytes())
    assert _open(ids, shared, _info(aad), ciphertext) == plaintext


def _part(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(4, "big") + data


def _documented_aad(doc: dict[str, str], public: bytes) -> bytes:
    """The aad exactly as the page's formula writes it, by hand."""
    items = "\n".join(sorted(set(json.loads(doc["items"]))))
    return (
        _part(doc["scenario_id"]) + _part(doc["requester"]) + _part(doc["provider"])
        + _part(doc["request_id"]) + _part(items) + _part(public.hex())
    )  # fmt: skip


def test_the_sealed_answer_example() -> None:
    doc = fields("sealed-answer")
    pair = SealingKeyPair.from_private_bytes("X25519", bytes.fromhex(doc["reply private key"]))
    public = pair.public_bytes
    assert public.hex() == doc["reply_public_key"], _fix(doc["reply_public_key"], public.hex())
    aad = _documented_aad(doc, public)
    assert aad.hex() == doc["aad"], _fix(doc["aad"], aad.hex())
    code_aad = attributes_aad(
        scenario_id=doc["scenario_id"], requester=doc["requester"], provider=doc["provider"],
        request_id=doc["request_id"], items=json.loads(doc["items"]), reply_public_key=public,
    )  # fmt: skip
    assert code_aad == aad, _fix(doc["aad"], code_aad.hex())
    assert _info(aad).hex() == doc["info"], _fix(doc["info"], _info(aad).hex())
    enc, ciphertext = bytes.fromhex(doc["enc"]), bytes.fromhex(doc["ciphertext"])
    opened = open_sealed("X25519", pair, enc, ciphertext, aad=aad)
    assert opened == doc["plaintext"].encode("utf-8")
    assert decode_attributes(opened) == json.loads(doc["plaintext"])
    ids = documented_suites()["X25519"]
    assert _open(ids, _decap_x25519(enc, pair.private_bytes()), _info(aad), ciphertext) == opened
    assert len(ciphertext) == len(opened) + 16


def test_the_sealed_answer_aad_part_by_part() -> None:
    """The annotated breakdown spells the example's aad, part by part."""
    aad, texts = b"", []
    for line in block("sealed-answer-aad").splitlines():
        length, data, text = line.split(maxsplit=2)
        part = bytes.fromhex(data)
        assert int(length, 16) == len(part), line
        assert part.decode("utf-8") == text.replace(" LF ", "\n"), line
        aad += bytes.fromhex(length) + part
        texts.append(text)
    assert aad.hex() == fields("sealed-answer")["aad"]
    assert len(texts) == 6


# -- identifiers ------------------------------------------------------------------------


def test_the_agency_id_pattern_is_the_codes() -> None:
    pattern = block("agency-id")
    from renkei import topics

    assert pattern == topics._AGENCY_ID.pattern
    field = directory_file.Agency.model_fields["agency_id"]
    assert pattern in str(field.metadata)
    assert Topics().agency_out("city-shinagawa") == "agency.city-shinagawa.out"


def test_link_codes_have_the_documented_form() -> None:
    pattern = re.compile(block("link-code"))
    links = LinkCodes(KeyRing(MasterSecret(bytes(32))))
    for i in range(300):
        id_code = hashlib.sha256(str(i).encode()).digest()[:16]
        code = links.mint("city-shinagawa" if i % 2 else "jps", id_code)
        assert pattern.fullmatch(code), code
    # the form is no looser than the code: a last character with its pad bit set is refused
    assert not pattern.fullmatch(code[:-1] + "b")
    assert LinkCodes.version_of(code) == 1


def test_my_number_examples() -> None:
    for line in block("my-number").splitlines():
        body, digit = (part.strip() for part in line.split("→"))
        assert mynumber.check_digit(body) == int(digit), line
        assert stdnum_my_number.calc_check_digit(body) == digit, line
    assert mynumber.validate("123456789018") == "123456789018"


def test_murmur2_examples() -> None:
    rows = block("murmur2").splitlines()[1:]
    assert len(rows) == 8
    for row in rows:
        key, signed, partition = row.split()
        value = murmur2(key.encode("utf-8"))  # the function the hub partitions with
        as_signed = value - (1 << 32) if value >= 1 << 31 else value
        assert as_signed == int(signed), _fix(f"{key} {signed}", str(as_signed))
        assert (value & 0x7FFFFFFF) % 3 == int(partition), key


def test_audit_partition_example() -> None:
    for row in block("audit-partition").splitlines()[1:]:
        key, crc, partition = row.split()
        assert zlib.crc32(key.encode("utf-8")) == int(crc, 16)
        assert zlib.crc32(key.encode("utf-8")) % 3 == int(partition)


# -- the directory file -----------------------------------------------------------------


def test_the_directory_file_example_is_accepted() -> None:
    directory = parse_directory_file(block("directory-file"), source="docs/contract.md")
    assert [a.agency_id for a in directory.agencies] == ["jps", "city-shinagawa"]
    assert directory.scenario("S003").items == ("pension.benefit_status",)


def test_the_directory_file_tables_name_every_field() -> None:
    section = TEXT[TEXT.index("## The directory file") : TEXT.index("## Message reference")]
    documented = set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))
    models = (directory_file.DirectoryFile, directory_file.Agency, directory_file.Scenario)
    assert documented == {name for model in models for name in model.model_fields}


def test_the_readiness_section_is_there() -> None:
    assert "## Readiness and waiting for a registration" in TEXT


# -- access control -----------------------------------------------------------------------

_OPERATIONS = {"Read": "READ", "Write": "WRITE", "Describe": "DESCRIBE", "Create": "CREATE"}
_KINDS = {
    "topic": "TOPIC",
    "topics": "TOPIC",
    "group": "GROUP",
    "transactional id": "TRANSACTIONAL_ID",
}


def documented_acls(agencies: list[str]) -> set[tuple[str, str, str, str, str]]:
    """The ACL table expanded for ``agencies``: (principal, kind, name, pattern, operation)."""
    out = set()
    for row in block("acls").splitlines()[2:]:
        principal, operations, resource = (c.strip() for c in row.strip("|").split("|"))
        kind = re.match(r"([a-z ]+?) `", resource)
        assert kind, row
        pattern = "PREFIXED" if resource.endswith("(prefixed)") else "LITERAL"
        for template in re.findall(r"`([^`]+)`", resource):
            for agency in agencies if "<id>" in principal + template else [""]:
                out |= {
                    (principal.strip("`").replace("<id>", agency), _KINDS[kind.group(1)],
                     template.replace("<id>", agency), pattern, _OPERATIONS[op.strip()])
                    for op in operations.split(",")
                }  # fmt: skip
    return out


@pytest.mark.parametrize("prefix", ["", "t1."])
def test_the_acl_table_is_what_acl_sync_grants(prefix: str) -> None:
    from renkei.operator.acl import desired_acls

    directory = parse_directory_file(block("directory-file"))
    agencies = [a.agency_id for a in directory.agencies]
    granted = {
        (b.principal.removeprefix("User:"), b.resource_type.name, b.name.removeprefix(prefix),
         b.pattern.name, b.operation.name)
        for b in desired_acls(directory, Topics(prefix))
    }  # fmt: skip
    assert all(b.name.startswith(prefix) for b in desired_acls(directory, Topics(prefix)))
    assert documented_acls(agencies) == granted
