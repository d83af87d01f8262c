"""My Number format and check digit (施行令第8条).

Hand computation of the check digit of 12345678901, digits read from the right
(P_1 = 1, P_2 = 0, P_3 = 9, ..., P_11 = 1) with weights Q_n = 2..7, 2..6::

    1·2 + 0·3 + 9·4 + 8·5 + 7·6 + 6·7 + 5·2 + 4·3 + 3·4 + 2·5 + 1·6
  = 2 + 0 + 36 + 40 + 42 + 42 + 10 + 12 + 12 + 10 + 6 = 212
    212 mod 11 = 3  →  check digit 11 − 3 = 8  →  123456789018 is valid.

Others, the same way:

- 11111111111: the weights sum to 47, 47 mod 11 = 3 → 8 → 111111111118.
- 98765432109: 9·2 + 0·3 + 1·4 + 2·5 + 3·6 + 4·7 + 5·2 + 6·3 + 7·4 + 8·5 + 9·6 = 228,
  228 mod 11 = 8 → 3 → 987654321093.
- 00000000000: sum 0, r = 0 ≤ 1 → 0 → 000000000000.
- 00000000006: 6·2 = 12, r = 1 ≤ 1 → 0 → 000000000060.
- 00000000005: 5·2 = 10, r = 10 → 1 → 000000000051.
"""

from __future__ import annotations

import random

import pytest
from stdnum.jp import in_ as stdnum_my_number

from renkei import mynumber
from renkei.errors import ContractError, InvalidMyNumberError

VALID = [
    "123456789018",
    "111111111118",
    "987654321093",
    "000000000000",
    "000000000060",
    "000000000051",
]


@pytest.mark.parametrize("number", VALID)
def test_hand_computed_numbers_are_valid(number: str) -> None:
    assert mynumber.check_digit(number[:11]) == int(number[11])
    assert mynumber.validate(number) == number
    assert mynumber.is_valid(number)


@pytest.mark.parametrize("wrong", [d for d in "0123456789" if d != "8"])
def test_every_other_check_digit_is_refused(wrong: str) -> None:
    with pytest.raises(InvalidMyNumberError, match="check digit"):
        mynumber.validate("12345678901" + wrong)
    assert not mynumber.is_valid("12345678901" + wrong)


@pytest.mark.parametrize(
    "written",
    [
        "１２３４５６７８９０１８",  # full-width, as typed through an IME
        "1234-5678-9018",
        "1234 5678 9018",
        "1234\u30005678\u30009018",  # ideographic space
        "１２３４－５６７８－９０１８",
        "1234ー5678ー9018",  # long-vowel mark typed for a dash
        " 123456789018 ",
    ],
)
def test_presentation_is_normalised(written: str) -> None:
    assert mynumber.validate(written) == "123456789018"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("12345678901", "must have 12 digits, got 11"),
        ("1234567890180", "must have 12 digits, got 13"),
        ("", "empty"),
        ("   ", "empty"),
        ("12345678901A", "found 'A' at digit position 12"),
        ("1234567a9018", "found 'a' at digit position 8"),
        ("١٢٣٤٥٦٧٨٩٠١٨", "found '١'"),  # Arabic-Indic digits are not read as digits
        ("①23456789018", "found '①'"),  # nor are circled ones
        ("1234.5678.9018", "found '.'"),
    ],
)
def test_malformed_numbers_say_what_is_wrong(number: str, message: str) -> None:
    with pytest.raises(InvalidMyNumberError, match=message):
        mynumber.validate(number)


def test_an_integer_is_refused_because_it_loses_leading_zeros() -> None:
    with pytest.raises(InvalidMyNumberError, match="as text"):
        mynumber.validate(60)  # type: ignore[arg-type]  # callers get this wrong
    assert not mynumber.is_valid(123456789018)


def test_messages_never_repeat_the_number() -> None:
    for bad in ("123456789017", "12345678901", "1234567890123"):
        with pytest.raises(InvalidMyNumberError) as caught:
            mynumber.validate(bad)
        assert bad not in str(caught.value)
        assert bad[:8] not in str(caught.value)


def test_the_error_is_a_contract_error() -> None:
    assert issubclass(InvalidMyNumberError, ContractError)


def test_check_digit_refuses_wrong_input() -> None:
    with pytest.raises(InvalidMyNumberError, match="11 digits"):
        mynumber.check_digit("123")
    with pytest.raises(InvalidMyNumberError, match="found 'x'"):
        mynumber.check_digit("1234567890x")


def _remainder(first11: str) -> int:
    weights = (2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6)
    return sum(int(d) * w for d, w in zip(reversed(first11), weights, strict=True)) % 11


def test_a_single_mistyped_digit_is_caught_unless_the_ordinance_folds_it() -> None:
    # The weights 2..7 are units mod 11, so changing one of the first 11 digits always
    # changes the remainder r; so does swapping two different neighbours (weights differ
    # by 1 or 5). The only blind spot is the ordinance's own: r = 0 and r = 1 share
    # check digit 0.
    rng = random.Random(8)
    missed = caught = 0
    for _ in range(300):
        number = mynumber.generate(rng)
        position = rng.randrange(11)
        typos = [
            number[:position] + digit + number[position + 1 :]
            for digit in "0123456789"
            if digit != number[position]
        ]
        i = rng.randrange(10)
        if number[i] != number[i + 1]:
            typos.append(number[:i] + number[i + 1] + number[i] + number[i + 2 :])
        for typo in typos:
            assert _remainder(typo[:11]) != _remainder(number[:11])
            if mynumber.is_valid(typo):
                missed += 1
                assert {_remainder(typo[:11]), _remainder(number[:11])} == {0, 1}
            else:
                caught += 1
    assert missed < caught / 50


def test_generate_is_valid_and_reproducible() -> None:
    first = [mynumber.generate(random.Random(5)) for _ in range(3)]
    assert len(set(first)) == 1
    rng = random.Random(6)
    numbers = {mynumber.generate(rng) for _ in range(2000)}
    assert len(numbers) == 2000
    assert all(len(n) == 12 and mynumber.is_valid(n) for n in numbers)
    # Leading zeros are possible and kept.
    assert any(n.startswith("0") for n in numbers)


# -- python-stdnum as the oracle ---------------------------------------------------------
# stdnum.jp.in_ is the Japanese Individual Number (個人番号), written independently of us:
# weights (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2) read left to right and check = -sum mod 11 mod 10.


def test_stdnum_is_the_my_number_module() -> None:
    # its own documented example, so a renamed or repurposed module fails here, not silently
    assert stdnum_my_number.validate("6214 9832 0257") == "621498320257"
    assert mynumber.validate("6214 9832 0257") == "621498320257"


def test_check_digit_agrees_with_stdnum_on_random_bodies() -> None:
    rng = random.Random(2015)  # the year My Numbers were first assigned
    for _ in range(20_000):
        body = f"{rng.randrange(10**11):011d}"
        assert str(mynumber.check_digit(body)) == stdnum_my_number.calc_check_digit(body), body


def test_every_remainder_agrees_with_stdnum() -> None:
    # r = 0 and r = 1 are the ordinance's special case; make sure each r is met
    rng = random.Random(11)
    seen: set[int] = set()
    while len(seen) < 11:
        body = f"{rng.randrange(10**11):011d}"
        seen.add(_remainder(body))
        assert str(mynumber.check_digit(body)) == stdnum_my_number.calc_check_digit(body), body


def test_validity_agrees_with_stdnum_on_random_numbers() -> None:
    # random 12 digits: about one in ten has the right check digit
    rng = random.Random(12)
    valid = 0
    for _ in range(20_000):
        number = f"{rng.randrange(10**12):012d}"
        assert mynumber.is_valid(number) == stdnum_my_number.is_valid(number), number
        valid += mynumber.is_valid(number)
    assert 1_000 < valid < 3_000
