"""Exact matching on the normalised basic-4, and the resolution rules of PersonIndex."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from hub_stream import matching, normalize
from hub_stream.matching import Basic4, MatchResult, PersonIndex, normalise_basic4
from hub_stream.normalize import normalise_address, normalise_kana, normalise_name
from renkei import mynumber
from renkei.errors import InvalidMyNumberError

HANAKO = Basic4(
    name="髙橋 花子",
    name_kana="タカハシ ハナコ",
    birth_date=dt.date(1980, 4, 2),
    sex="FEMALE",
    address="東京都品川区広町二丁目1番36号",
)
TARO = Basic4(
    name="佐藤 太郎",
    name_kana="サトウ タロウ",
    birth_date=dt.date(1975, 12, 31),
    sex="MALE",
    address="大阪府大阪市北区中之島一丁目3番20号",
)
HANAKO_ID = b"\x01" * 16
TARO_ID = b"\x02" * 16
OTHER_ID = b"\x03" * 16
HANAKO_NO = "123456789018"
TARO_NO = "111111111118"
SPARE_NO = "987654321093"


def b4(base: Basic4 = HANAKO, /, **changes: object) -> Basic4:
    fields = {
        "name": base.name,
        "name_kana": base.name_kana,
        "birth_date": base.birth_date,
        "sex": base.sex,
        "address": base.address,
    }
    fields.update(changes)
    return Basic4(**fields)  # type: ignore[arg-type]  # test helper, values checked above


@pytest.fixture
def index() -> PersonIndex:
    idx = PersonIndex()
    idx.add(HANAKO_ID, HANAKO, HANAKO_NO)
    idx.add(TARO_ID, TARO, TARO_NO)
    return idx


# --- normalisation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "髙橋 花子",
        "高橋 花子",
        "高橋　花子",  # ideographic space
        "高橋花子",
        " 高橋  花子 ",
        "高\U000e0100橋 花子",  # a variation selector picks a glyph, not a character
    ],
)
def test_name_variants_agree(written: str) -> None:
    assert normalise_name(written) == "高橋花子"


@pytest.mark.parametrize(
    ("variant", "standard"),
    [
        ("齋藤", "斎藤"),
        ("齊藤", "斎藤"),
        ("斉藤", "斎藤"),
        ("渡邊", "渡辺"),
        ("渡邉", "渡辺"),
        ("山﨑", "山崎"),
        ("山嵜", "山崎"),
        ("澤田", "沢田"),
        ("濱田", "浜田"),
        ("國分", "国分"),
        ("廣瀬", "広瀬"),
        ("櫻井", "桜井"),
        ("中嶋", "中島"),
        ("冨田", "富田"),
        ("眞一", "真一"),
        ("惠子", "恵子"),
        ("德永", "徳永"),
        ("成瀨", "成瀬"),
        ("大藏", "大蔵"),
        ("實", "実"),
        ("龍也", "竜也"),
        ("灯篭", "灯籠"),  # 籠 is the 常用 form; its 俗字 folds to it
    ],
)
def test_variant_kanji_fold_to_the_standard_form(variant: str, standard: str) -> None:
    assert normalise_name(variant) == normalise_name(standard)


def test_every_variant_entry_folds_to_a_character_that_does_not_fold_again() -> None:
    for variant, standard in normalize.VARIANT_KANJI.items():
        assert variant != standard
        assert standard not in normalize.VARIANT_KANJI


def test_distinct_names_stay_distinct() -> None:
    assert normalise_name("高橋花子") != normalise_name("高梨花子")
    assert normalise_name("佐々木") != normalise_name("佐木")


@pytest.mark.parametrize(
    "written",
    [
        "タカハシ ハナコ",
        "たかはし はなこ",  # hiragana
        "ﾀｶﾊｼ ﾊﾅｺ",  # half-width
        "ﾀｶﾊｼ\u3000ﾊﾅｺ",
        "タカハシハナコ",
    ],
)
def test_kana_variants_agree(written: str) -> None:
    assert normalise_kana(written) == "タカハシハナコ"


@pytest.mark.parametrize(
    "written",
    [
        "ガッコウ ジロウ",
        "がっこう じろう",
        "ｶﾞｯｺｳ ｼﾞﾛｳ",  # half-width with separate voiced marks
        "カ゛ッコウ シ゛ロウ",  # detached voiced marks (゛) as old systems store them
        "ガツコウ ジロウ",  # small kana written large
    ],
)
def test_voiced_and_small_kana_agree(written: str) -> None:
    assert normalise_kana(written) == "ガツコウジロウ"


def test_kana_keeps_real_differences() -> None:
    assert normalise_kana("オオタ") != normalise_kana("オータ")
    assert normalise_kana("カトウ") != normalise_kana("ガトウ")
    assert normalise_kana("ハナコ") != normalise_kana("パナコ")


@pytest.mark.parametrize(
    "written",
    [
        "東京都品川区広町二丁目1番36号",
        "東京都品川区広町2丁目1番36号",
        "東京都品川区広町2-1-36",
        "東京都品川区広町２－１－３６",
        "東京都　品川区　広町２丁目１－３６",
        "東京都品川区広町2‐1‐36",
        "東京都品川区広町2−1−36",
        "東京都品川区広町2―1―36",
        "東京都品川区広町2ー1ー36",  # long-vowel mark typed for a dash
        "東京都品川区広町二丁目一番三十六号",
        "東京都品川区広町2丁目1-36-",
    ],
)
def test_address_notations_agree(written: str) -> None:
    assert normalise_address(written) == "東京都品川区広町2-1-36"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("大阪府堺市十二番地の3", "大阪府堺市12-3"),
        ("大阪府堺市百五番地", "大阪府堺市105"),
        ("東京都千代田区一番町10番地", "東京都千代田区1番町10"),
        ("広町1-2-3 コーポ広町101号室", "広町1丁目2番3号コーポ広町101"),
        ("広町1-2-3 101号室", "広町1丁目2番3号101号室"),
        ("千葉県鎌ケ谷市", "千葉県鎌ヶ谷市"),
        ("茨城県龍ケ崎市", "茨城県竜ヶ崎市"),
        ("前弥六二丁目3番4号", "前弥六2-3-4"),  # the town's own 六 is not the 丁目 number
    ],
)
def test_more_address_notations_agree(a: str, b: str) -> None:
    assert normalise_address(a) == normalise_address(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("広町2-1-36", "広町2-1-37"),
        ("広町1-2-3 101号室", "広町1-2-31 01号室"),  # a space between numbers separates them
        ("広町二丁目1番36号", "広町十二丁目1番36号"),
        ("品川区広町2-1-36", "東京都品川区広町2-1-36"),  # the prefecture is not dropped
        ("広町2-1-36 コーポ", "広町2-1-36 ハイツ"),
    ],
)
def test_different_addresses_stay_different(a: str, b: str) -> None:
    assert normalise_address(a) != normalise_address(b)


def test_match_key_is_hashable_and_readable() -> None:
    key = normalise_basic4(HANAKO)
    assert key == normalise_basic4(b4(name="高橋　花子", name_kana="たかはし はなこ"))
    assert {key: 1}[key] == 1
    assert key.birth_date == "1980-04-02"
    assert key.canonical().count(b"\x1f") == 4


def test_a_datetime_birth_date_does_not_carry_its_time() -> None:
    with_time = b4(birth_date=dt.datetime(1980, 4, 2, 13, 5))
    assert normalise_basic4(with_time) == normalise_basic4(HANAKO)


def test_an_unknown_sex_is_refused() -> None:
    with pytest.raises(ValueError, match="sex"):
        normalise_basic4(b4(sex="F"))


def test_the_avro_model_satisfies_basic4like() -> None:
    from schemas import models

    avro = models.Basic4(
        name="高橋 花子",
        name_kana="たかはし はなこ",
        birth_date=dt.date(1980, 4, 2),
        sex=models.Sex.FEMALE,
        address="東京都品川区広町2-1-36",
    )
    assert normalise_basic4(avro) == normalise_basic4(HANAKO)


# --- resolution --------------------------------------------------------------------


def linked(result: MatchResult, person_id: bytes) -> bool:
    return result.outcome == "LINKED" and result.person_id == person_id


def test_width_kana_space_and_variant_writing_link(index: PersonIndex) -> None:
    written = Basic4(
        name="高橋　花子",
        name_kana="ﾀｶﾊｼ ﾊﾅｺ",
        birth_date=dt.date(1980, 4, 2),
        sex="FEMALE",
        address="東京都 品川区 広町２－１－３６",
    )
    result = index.resolve(None, written)
    assert linked(result, HANAKO_ID)
    assert result.matched_by == "BASIC4"


@pytest.mark.parametrize(
    "change",
    [
        {"birth_date": dt.date(1980, 4, 3)},
        {"sex": "MALE"},
        {"sex": "UNSPECIFIED"},  # never a wildcard
        {"name": "高橋 花江"},
        {"name_kana": "タカハシ ハナエ"},
        {"address": "東京都品川区広町二丁目1番37号"},
        {"address": "品川区広町二丁目1番36号"},
    ],
)
def test_any_real_difference_is_no_match(index: PersonIndex, change: dict[str, object]) -> None:
    result = index.resolve(None, b4(**change))
    assert result.outcome == "NO_MATCH"
    assert result.person_id is None


def test_twins_with_one_name_and_address_but_different_sex_do_not_collide() -> None:
    idx = PersonIndex()
    girl = b4(name="鈴木 ひかる", name_kana="スズキ ヒカル", sex="FEMALE")
    boy = b4(name="鈴木 ひかる", name_kana="スズキ ヒカル", sex="MALE")
    idx.add(HANAKO_ID, girl, None)
    idx.add(TARO_ID, boy, None)
    assert linked(idx.resolve(None, girl), HANAKO_ID)
    assert linked(idx.resolve(None, boy), TARO_ID)


def test_identical_basic4_is_ambiguous_and_never_guessed(index: PersonIndex) -> None:
    index.add(OTHER_ID, b4(name="高橋　花子"), SPARE_NO)
    result = index.resolve(None, HANAKO)
    assert result.outcome == "AMBIGUOUS"
    assert result.person_id is None
    assert "2 persons" in result.detail
    # The number tells them apart.
    assert linked(index.resolve(SPARE_NO, HANAKO), OTHER_ID)
    assert linked(index.resolve(HANAKO_NO, HANAKO), HANAKO_ID)
    # Once one of them is gone the other links again.
    assert index.remove(OTHER_ID)
    assert linked(index.resolve(None, HANAKO), HANAKO_ID)


def test_three_way_duplicates_unwind_one_by_one() -> None:
    idx = PersonIndex()
    ids = [bytes([i]) * 16 for i in range(3)]
    for pid in ids:
        idx.add(pid, HANAKO, None)
    assert "3 persons" in idx.resolve(None, HANAKO).detail
    idx.remove(ids[1])
    assert "2 persons" in idx.resolve(None, HANAKO).detail
    idx.update(ids[0], TARO, None)
    assert linked(idx.resolve(None, HANAKO), ids[2])
    assert linked(idx.resolve(None, TARO), ids[0])


def test_link_by_number(index: PersonIndex) -> None:
    result = index.resolve("1234-5678-9018", None)
    assert linked(result, HANAKO_ID)
    assert result.matched_by == "MY_NUMBER"


def test_number_confirmed_by_basic4(index: PersonIndex) -> None:
    result = index.resolve(HANAKO_NO, b4(name_kana="たかはし はなこ"))
    assert linked(result, HANAKO_ID)
    assert result.matched_by == "MY_NUMBER_AND_BASIC4"


def test_number_with_an_out_of_date_basic4_still_links(index: PersonIndex) -> None:
    result = index.resolve(HANAKO_NO, b4(address="東京都品川区旧町1-1-1"))
    assert linked(result, HANAKO_ID)
    assert result.matched_by == "MY_NUMBER"
    assert "matches no current registry entry" in result.detail


@pytest.mark.parametrize("bad", ["123456789017", "12345678901", "12345678901X", "１２３"])
def test_invalid_number_is_invalid_even_with_a_good_basic4(index: PersonIndex, bad: str) -> None:
    result = index.resolve(bad, HANAKO)
    assert result.outcome == "INVALID"
    assert result.person_id is None
    assert bad not in result.detail


def test_conflict_between_number_and_basic4_is_ambiguous(index: PersonIndex) -> None:
    result = index.resolve(TARO_NO, HANAKO)
    assert result.outcome == "AMBIGUOUS"
    assert result.person_id is None
    assert "different persons" in result.detail


def test_unknown_valid_number_is_no_match_and_the_basic4_does_not_rescue_it(
    index: PersonIndex,
) -> None:
    result = index.resolve(SPARE_NO, HANAKO)
    assert result.outcome == "NO_MATCH"
    assert "no person currently holds" in result.detail


def test_blank_number_counts_as_absent(index: PersonIndex) -> None:
    assert linked(index.resolve("  ", HANAKO), HANAKO_ID)
    assert index.resolve("", None).outcome == "INVALID"


def test_nothing_to_match_on_is_invalid(index: PersonIndex) -> None:
    result = index.resolve(None, None)
    assert result.outcome == "INVALID"
    assert "neither" in result.detail


def test_unusable_basic4_is_invalid(index: PersonIndex) -> None:
    result = index.resolve(None, b4(sex="X"))
    assert result.outcome == "INVALID"
    assert "sex" in result.detail


def test_details_never_carry_personal_data(index: PersonIndex) -> None:
    index.add(OTHER_ID, HANAKO, SPARE_NO)
    for number, basic in [
        (None, HANAKO),
        (TARO_NO, HANAKO),
        (HANAKO_NO, TARO),
        ("123456789017", None),
        (None, b4(name="誰か")),
    ]:
        detail = index.resolve(number, basic).detail
        for secret in (HANAKO_NO, TARO_NO, SPARE_NO, "高橋", "花子", "広町", "1980"):
            assert secret not in detail


def test_update_after_a_move(index: PersonIndex) -> None:
    moved = b4(address="大阪府大阪市北区中之島三丁目2番1号")
    index.update(HANAKO_ID, moved, HANAKO_NO)
    assert index.resolve(None, HANAKO).outcome == "NO_MATCH"
    assert linked(index.resolve(None, moved), HANAKO_ID)
    assert linked(index.resolve(HANAKO_NO, moved), HANAKO_ID)


def test_update_after_a_rename(index: PersonIndex) -> None:
    married = b4(name="佐藤 花子", name_kana="サトウ ハナコ")
    index.update(HANAKO_ID, married, HANAKO_NO)
    assert index.resolve(None, HANAKO).outcome == "NO_MATCH"
    assert linked(index.resolve(None, married), HANAKO_ID)


def test_only_the_current_number_resolves_after_reissue(index: PersonIndex) -> None:
    index.update(HANAKO_ID, HANAKO, SPARE_NO)
    old = index.resolve(HANAKO_NO, None)
    assert old.outcome == "NO_MATCH"
    assert "revoked" in old.detail
    assert linked(index.resolve(SPARE_NO, None), HANAKO_ID)
    assert linked(index.resolve(None, HANAKO), HANAKO_ID)


def test_revoked_numbers_given_with_the_row_replace_what_the_index_knew() -> None:
    idx = PersonIndex()
    idx.add(HANAKO_ID, HANAKO, SPARE_NO, revoked=[HANAKO_NO])
    assert "revoked" in idx.resolve(HANAKO_NO, None).detail
    idx.update(HANAKO_ID, HANAKO, HANAKO_NO, revoked=[])  # the reissue was annulled
    assert linked(idx.resolve(HANAKO_NO, None), HANAKO_ID)
    spare = idx.resolve(SPARE_NO, None)
    assert (spare.outcome, "revoked" in spare.detail) == ("NO_MATCH", False)
    with pytest.raises(InvalidMyNumberError):
        idx.update(HANAKO_ID, HANAKO, HANAKO_NO, revoked=["12345"])
    assert linked(idx.resolve(HANAKO_NO, None), HANAKO_ID)  # a refused update changed nothing
    idx.update(HANAKO_ID, HANAKO, SPARE_NO)  # by default the number it replaces is revoked
    assert "revoked" in idx.resolve(HANAKO_NO, None).detail
    idx.remove(HANAKO_ID)
    assert "revoked" not in idx.resolve(HANAKO_NO, None).detail


def test_a_person_without_a_number_resolves_by_basic4_only() -> None:
    idx = PersonIndex()
    idx.add(HANAKO_ID, HANAKO, None)
    assert linked(idx.resolve(None, HANAKO), HANAKO_ID)
    assert idx.resolve(HANAKO_NO, HANAKO).outcome == "NO_MATCH"
    idx.update(HANAKO_ID, HANAKO, HANAKO_NO)
    assert linked(idx.resolve(HANAKO_NO, None), HANAKO_ID)


def test_add_refuses_a_second_entry_and_a_taken_number(index: PersonIndex) -> None:
    with pytest.raises(ValueError, match="already indexed"):
        index.add(HANAKO_ID, HANAKO, HANAKO_NO)
    with pytest.raises(ValueError, match="already holds"):
        index.add(OTHER_ID, TARO, TARO_NO)
    with pytest.raises(InvalidMyNumberError):
        index.add(OTHER_ID, TARO, "123456789017")
    with pytest.raises(TypeError):
        index.add("not bytes", TARO, None)  # type: ignore[arg-type]  # checked at runtime
    assert OTHER_ID not in index
    assert len(index) == 2


def test_a_refused_update_changes_nothing(index: PersonIndex) -> None:
    with pytest.raises(ValueError, match="already holds"):
        index.update(HANAKO_ID, b4(address="どこか"), TARO_NO)
    with pytest.raises(ValueError, match="sex"):
        index.update(HANAKO_ID, b4(sex="?"), HANAKO_NO)
    with pytest.raises(KeyError):
        index.update(OTHER_ID, HANAKO, None)
    assert linked(index.resolve(HANAKO_NO, HANAKO), HANAKO_ID)
    assert linked(index.resolve(TARO_NO, TARO), TARO_ID)


def test_remove(index: PersonIndex) -> None:
    assert index.remove(HANAKO_ID)
    assert not index.remove(HANAKO_ID)
    assert HANAKO_ID not in index
    assert index.resolve(HANAKO_NO, None).outcome == "NO_MATCH"
    assert index.resolve(None, HANAKO).outcome == "NO_MATCH"
    assert len(index) == 1


def test_the_digest_key_changes_the_digests() -> None:
    plain = PersonIndex().digest(HANAKO)
    keyed = PersonIndex(digest_key=b"k" * 32).digest(HANAKO)
    assert len(plain) == len(keyed) == matching.DIGEST_SIZE
    assert plain != keyed
    assert PersonIndex(digest_key=b"k" * 32).digest(b4(name="髙橋　花子")) == keyed


def test_many_persons_resolve_to_themselves() -> None:
    rng = random.Random(3)
    idx = PersonIndex()
    people = []
    for i in range(2000):
        pid = i.to_bytes(16, "big")
        person = b4(
            name=f"人{i}",
            birth_date=dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(20000)),
        )
        number = mynumber.generate(rng)
        idx.add(pid, person, number)
        people.append((pid, person, number))
    for pid, person, number in people:
        assert linked(idx.resolve(number, person), pid)
        assert linked(idx.resolve(None, person), pid)


def test_public_surface() -> None:
    for module in (matching, normalize):
        for name in module.__all__:
            assert hasattr(module, name), name
