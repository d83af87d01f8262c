"""Derived ids never change: a batch processed again after a crash must write the same ids."""

from __future__ import annotations

import hashlib

import pytest

from hub_stream.ids import derive_id


def _reference(*parts: str) -> str:
    # The definition the ids were first written with: each part's UTF-8, then 0x1f.
    digest = hashlib.blake2b(digest_size=16, person=b"renkei-ids-v1")
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\x1f")
    return digest.hexdigest()


@pytest.mark.parametrize(
    "parts",
    [(), ("",), ("a",), ("ab", "c"), ("a", "bc"), ("x\x1fy",), ("ß", "\U0001f600", "")],
)
def test_ids_are_the_reference_definition_s(parts: tuple[str, ...]) -> None:
    assert derive_id(*parts) == _reference(*parts)


def test_an_id_of_the_hub_is_pinned() -> None:
    assert derive_id("hub-request", "city-shinagawa", "0" * 32) == _reference(
        "hub-request", "city-shinagawa", "0" * 32
    )
    assert derive_id("ab", "c") != derive_id("a", "bc")
