"""The Japanese-aware keys of bulk linkage: what agrees, and what must stay apart."""

from __future__ import annotations

import pytest

from hub_stream.normalize import normalise_name
from renkei.linkage.dates import parse_birth_date, parse_sex
from renkei.linkage.japanese import (
    address_keys,
    fold_kanji,
    kana_fold,
    kana_key,
    name_key,
    other_names,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("髙橋　一郎", "高橋 一郎"),
        ("渡邊 﨑子", "渡辺崎子"),
        ("渡邉崎子", "渡辺 崎子"),
        ("齋藤 健", "斎藤健"),
        ("齊藤 健", "斉藤健"),
        ("𠮷田 進", "吉田進"),
        ("櫻井　翔", "桜井翔"),
        ("ＳＭＩＴＨ　ＪＯＨＮ", "john smith"),
        ("Smith, John", "SMITH JOHN"),
    ],
)
def test_name_writings_agree(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize(
    ("a", "b"), [("佐藤健太", "佐藤翔太"), ("高橋一郎", "高橋二郎"), ("JOHN SMITH", "JOHN SMYTH")]
)
def test_different_names_stay_different(a: str, b: str) -> None:
    assert name_key(a) != name_key(b)


@pytest.mark.parametrize(
    ("a", "b"), [("玉置", "王置"), ("切田", "功田"), ("師岡", "帥岡"), ("着田", "著田")]
)
def test_characters_that_only_look_alike_are_never_merged(a: str, b: str) -> None:
    # The MJ map's glyph-inference schemes join these; a name must keep them apart.
    assert name_key(a) != name_key(b)
    assert fold_kanji(a) == a


def test_every_fold_lands_in_jis_x0208_or_stays() -> None:
    from renkei.linkage.japanese import _in_jis_x0208

    for code in (*range(0x3400, 0x4DC0), *range(0x4E00, 0xA000), *range(0x20000, 0x20400)):
        char = chr(code)
        folded = fold_kanji(char)
        assert folded == char or _in_jis_x0208(folded), char
        if _in_jis_x0208(char):
            assert folded in (char, normalise_name(char)), char  # only the hub's table


def test_mj_folding_reaches_beyond_the_hubs_table() -> None:
    # 𠮷 (tsuchi-yoshi) is not in the hub's exact table; the MJ map folds it.
    assert normalise_name("𠮷田") != normalise_name("吉田")
    assert fold_kanji("𠮷田") == "吉田"


def test_a_character_a_legacy_system_could_not_store_is_a_wildcard() -> None:
    assert name_key("渡〓一郎") == "渡_一郎"
    assert name_key("渡?一郎") == "渡_一郎"


def test_alias_and_former_names_are_other_names() -> None:
    registered = "NGUYEN VAN AN（通称 山田太郎）"
    assert name_key(registered) == name_key("AN NGUYEN VAN")
    assert other_names(registered, "佐藤 花子;") == [name_key("山田太郎"), name_key("佐藤花子")]
    assert other_names("高橋 花子", "高橋 花子") == []  # the current name is not "other"


@pytest.mark.parametrize(
    "written", ["オオタ", "オータ", "オウタ", "おおた", "ｵｵﾀ", "オオダ", "ｵｰﾀﾞ"]
)
def test_long_vowels_and_voicing_fold_in_the_coarse_reading(written: str) -> None:
    assert kana_fold(written) == kana_fold("オオタ")


@pytest.mark.parametrize(
    ("a", "b"), [("キョウコ", "キヨウコ"), ("ジュン", "ヂュン"), ("ユウコ", "ユーコ")]
)
def test_small_kana_ji_di_and_long_vowels_agree_coarsely(a: str, b: str) -> None:
    assert kana_fold(a) == kana_fold(b)


def test_the_exact_reading_keeps_long_vowels_apart() -> None:
    assert kana_key("ユウコ") != kana_key("ユーコ")
    assert kana_key("たなか　はなこ") == kana_key("ﾀﾅｶﾊﾅｺ") == "タナカハナコ"


def test_different_readings_stay_different() -> None:
    assert kana_fold("サトウ") != kana_fold("サイトウ")
    assert kana_fold("ケンタ") != kana_fold("ショウタ")


@pytest.mark.parametrize(
    "written",
    [
        "東京都千代田区霞が関一丁目2番3号",
        "千代田区霞ヶ関1-2-3",
        "東京都 千代田区 霞ケ関１－２－３",
        "東京都千代田区霞ヶ関１丁目２番地３",
        "東京都千代田区霞が関1丁目2番3号 霞ビル101号室",
    ],
)
def test_address_notations_agree_without_building(written: str) -> None:
    assert address_keys(written).base == "千代田区霞ケ関1-2-3"


@pytest.mark.parametrize(
    "written", ["広嶋県広島市中区浅草橋1089番１２", "廣島県廣島市中区浅草橋1089-12"]
)
def test_a_prefecture_written_with_a_variant_is_still_dropped(written: str) -> None:
    assert address_keys(written) == address_keys("広島市中区浅草橋1089番地12")


def test_oaza_aza_and_county_are_dropped() -> None:
    a = address_keys("埼玉県入間郡毛呂山町大字毛呂本郷12番地3")
    assert a == address_keys("毛呂山町字毛呂本郷12-3")
    assert address_keys("福島県郡山市桑野1-2").full == "郡山市桑野1-2"  # 郡山 is no county


def test_building_and_room_are_kept_in_the_full_key() -> None:
    keys = address_keys("千代田区霞ヶ関1-2-3 コーポ霞101号室")
    assert keys.full == "千代田区霞ケ関1-2-3コーポ霞101"
    assert keys.town == "千代田区霞ケ関"


def test_different_blocks_stay_different() -> None:
    assert address_keys("千代田区霞ヶ関1-2-3").base != address_keys("千代田区霞ヶ関1-2-4").base


@pytest.mark.parametrize(
    "written",
    [
        "1970-03-02",
        "1970/3/2",
        "19700302",
        "1970年3月2日",
        "昭和45年3月2日",
        "S45.3.2",
        "s45/3/2",
        "Ｓ４５．３．２",
        "昭和四十五年三月二日",
        "3450302",
        "昭和45年3月2日生",
    ],
)
def test_birth_dates_in_every_form(written: str) -> None:
    assert parse_birth_date(written) == parse_birth_date("1970-03-02")
    assert parse_birth_date(written) is not None


def test_first_era_year_and_era_boundaries() -> None:
    assert str(parse_birth_date("平成元年1月8日")) == "1989-01-08"
    assert str(parse_birth_date("H31.4.30")) == "2019-04-30"
    assert str(parse_birth_date("令和元年5月1日")) == "2019-05-01"
    assert parse_birth_date("平成32年1月1日") is None  # 平成 ended in its 31st year


@pytest.mark.parametrize("written", ["", "  ", "不明", "1970-02-30", "S45.13.1", "abc"])
def test_unreadable_dates_are_missing(written: str) -> None:
    assert parse_birth_date(written) is None


@pytest.mark.parametrize(
    ("written", "sex"),
    [("1", 1), ("2", 2), ("男", 1), ("女性", 2), ("M", 1), ("f", 2), ("9", None), ("", None)],
)
def test_sex_forms(written: str, sex: int | None) -> None:
    assert parse_sex(written) == sex


def test_numbers_are_checked_as_renkei_mynumber_checks_them() -> None:
    import random

    import pyarrow as pa

    from renkei import mynumber
    from renkei.linkage.prepare import _numbers

    rng = random.Random(5)
    good = [mynumber.generate(rng) for _ in range(300)]
    written = [
        *good,
        *(n[:11] + str((int(n[11]) + 1) % 10) for n in good[:100]),  # wrong check digit
        "1234-5678-9018", "１２３４５６７８９０１８", "1234 5678 9018", "123456789018\u3000",
        "12345678901", "1234567890189", "12345678901a", "①２３４５６７８９０１８", "", "  ",
    ]  # fmt: skip
    numbers, bad = _numbers(pa.chunked_array([written], pa.string()))
    for text, number, malformed in zip(written, numbers, bad, strict=True):
        expected = mynumber.validate(text) if mynumber.is_valid(text) else None
        assert number == expected, text
        assert malformed == (bool(text.strip()) and expected is None), text
