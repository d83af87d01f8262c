"""The person table folded from registry events (``renkei link match --registry-topic``)."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from aiokafka import TopicPartition

from renkei.crypto.signing import SigningKey
from renkei.envelope import encode_signed
from renkei.linkage import LinkageInputError
from renkei.linkage.registry_events import _event, fold
from renkei.linkage.run import _source
from schemas.codec import default_codec
from schemas.models import (
    Basic4,
    EventAction,
    EventBody,
    EventKind,
    Header,
    NumberReissued,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonRenamed,
    RegistryEvent,
    Sex,
)

B4 = Basic4(name="佐藤 花子", name_kana="サトウ ハナコ", birth_date=date(1980, 1, 2),
            sex=Sex.FEMALE, address="東京都品川区広町2-1-36")  # fmt: skip


def ev(
    event_id: str,
    kind: EventKind,
    body: EventBody | None,
    action: EventAction = EventAction.ORIGINAL,
    corrects: str | None = None,
    code: str = "12345678901",
) -> RegistryEvent:
    message_id = hashlib.blake2b(event_id.encode(), digest_size=16).hexdigest()
    return RegistryEvent(
        header=Header.new("registry", message_id=message_id),
        event_id=event_id, resident_code=code, kind=kind, action=action,
        corrects_event_id=corrects, effective_date=date(2026, 4, 1), body=body,
    )  # fmt: skip


def registered(
    event_id: str = "e1", number: str = "123456789018", code: str = "12345678901"
) -> RegistryEvent:
    body = PersonRegistered(my_number=number, basic4=B4)
    return ev(event_id, EventKind.REGISTERED, body, code=code)


def test_moves_renames_and_reissues_keep_the_history() -> None:
    table = fold(
        [
            registered(),
            ev("e2", EventKind.MOVED, PersonMoved(address="大阪府豊中市本町1-2-3")),
            ev("e3", EventKind.RENAMED, PersonRenamed(name="鈴木 花子", name_kana="スズキ ハナコ")),
            ev("e4", EventKind.NUMBER_REISSUED, NumberReissued(my_number="000000000019")),
            ev("e5", EventKind.DIED, PersonDied(date_of_death=date(2026, 3, 1))),
        ]
    )
    [row] = table.to_pylist()
    assert row == {
        "resident_code": "12345678901",
        "my_number": "000000000019",
        "name": "鈴木 花子",
        "name_kana": "スズキ ハナコ",
        "birth_date": "1980-01-02",
        "sex": "2",
        "address": "大阪府豊中市本町1-2-3",
        "former_names": "佐藤 花子",
        "former_addresses": "東京都品川区広町2-1-36",
    }


def test_corrections_annulments_and_repeats() -> None:
    wrong = ev("e2", EventKind.MOVED, PersonMoved(address="誤った住所"))
    right = PersonMoved(address="大阪府豊中市本町1-2-3")
    correction = ev("c2", EventKind.MOVED, right, EventAction.CORRECTION, corrects="e2")
    other = registered("f1", "111111111118", code="99999999999")
    annulment = ev("a1", EventKind.REGISTERED, None, EventAction.ANNULMENT, "f1", "99999999999")
    # The registration twice (the registry sent it again), a wrong move corrected, and
    # another person's registration annulled.
    rows = fold([registered(), registered(), wrong, correction, other, annulment]).to_pylist()
    assert [r["resident_code"] for r in rows] == ["12345678901"]
    assert rows[0]["address"] == "大阪府豊中市本町1-2-3"
    assert rows[0]["former_addresses"] == "東京都品川区広町2-1-36"


def test_an_unsigned_or_forged_event_is_refused() -> None:
    codec = default_codec()
    registry, forger = SigningKey.generate(), SigningKey.generate()
    event = registered()
    tp = TopicPartition("registry.events", 0)
    good = encode_signed(event, registry, codec)
    assert _event(good, registry.public_bytes, codec, tp, 0).event_id == "e1"
    with pytest.raises(LinkageInputError, match=r"registry.events\[0\]@7: not signed"):
        _event(encode_signed(event, forger, codec), registry.public_bytes, codec, tp, 7)
    with pytest.raises(LinkageInputError, match="empty"):
        _event(None, registry.public_bytes, codec, tp, 8)


def test_an_unchanged_feed_fingerprints_the_same() -> None:
    # A re-read of the same feed must let an interrupted run resume; another feed must not.
    first = _source(fold([registered(), registered("e9", "111111111118", "22222222222")]))
    again = _source(fold([registered("e9", "111111111118", "22222222222"), registered()]))
    assert first == again
    assert first != _source(fold([registered()]))
