"""The Fellegi–Sunter model, in splink on DuckDB: comparisons, blocking and training.

Six comparisons, each a ladder of levels from "agrees exactly" down to "disagrees" (a
missing value on either side is a null level and counts neither way):

- name: same key (term-frequency adjusted) · any name of one is a name of the other
  (former name, 通称) · the same but for characters a legacy system could not store ·
  one character apart · the same given name (a marriage changes the surname) · else;
- kana: same reading (tf) · same coarse reading · the same given-name reading where the
  name agrees through an earlier name (a marriage) · one kana apart (coarse) · the same
  given-name reading · else;
- birth: same date · one digit apart, two digits swapped, or day and month swapped ·
  else;
- sex: same · else;
- address: same (tf) · same without building/room · one is a former address of the
  other · same town · else;
- my_number: same · different.

Nothing is hard-coded about how much each level weighs: the u probabilities come from
random pairs, the match rate from strict deterministic rules, and the m probabilities
from expectation maximisation on the data being linked (two EM passes, blocked on birth
date and on reading + town, so that each comparison is estimated in one of them). The
trained model is a splink JSON file; :func:`for_dialect` renders it for splink's Spark
backend (``docs/linkage.md``).

Candidate pairs come from the union of the blocking rules (:data:`BLOCKING_RULES`): the
same My Number; the same birth date with the same sex, a missing sex, the same first two
kana of the reading, the same name or the same address; the same coarse reading in the
same town; the same name at the same address. A record none of them reaches has no
candidate.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from splink import DuckDBAPI, Linker, SettingsCreator
from splink import comparison_level_library as cll
from splink import comparison_library as cl
from splink.blocking_rule_library import CustomRule
from splink.internals.blocking_rule_creator import BlockingRuleCreator
from splink.internals.comparison_level_creator import ComparisonLevelCreator
from splink.internals.splink_dataframe import SplinkDataFrame

__all__ = [
    "BLOCKING_RULES",
    "LEVELS",
    "TF_COLUMNS",
    "Dialect",
    "build_linker",
    "for_dialect",
    "settings",
    "term_frequencies",
    "train",
]

BLOCKING_RULES: Final = (
    "l.mynum = r.mynum",
    # The birth date with a second key: the birth date alone brings ~30 strangers per
    # record in a million people, and scoring them was most of the time.
    "l.birth = r.birth AND l.sex = r.sex",
    "l.birth = r.birth AND (l.sex IS NULL OR r.sex IS NULL)",
    "l.birth = r.birth AND substr(l.kana_f, 1, 2) = substr(r.kana_f, 1, 2)",
    "l.birth = r.birth AND l.name_n = r.name_n",
    "l.birth = r.birth AND l.addr_base = r.addr_base",
    "l.kana_f = r.kana_f AND l.addr_town = r.addr_town",
    "l.name_n = r.name_n AND l.addr_base = r.addr_base",
)
"""The rules whose union generates the candidate pairs."""

LEVELS: Final = {
    "name": ("else", "given", "one_char", "legacy", "other_name", "exact"),
    "kana": ("else", "given", "one_kana", "married", "coarse", "exact"),
    "birth": ("else", "day_month_swapped", "one_typo", "exact"),
    "sex": ("else", "exact"),
    "address": ("else", "town", "former", "base", "exact"),
    "my_number": ("else", "exact"),
}
"""Each comparison's levels by their gamma value (index); -1 is "missing"."""


def _null(column: str) -> ComparisonLevelCreator:
    return cll.CustomLevel(f"{column}_l IS NULL OR {column}_r IS NULL").configure(
        is_null_level=True
    )


# The few SQL functions of the custom levels that differ between splink's backends.
_SQL: Final = {
    "duckdb": {"has_any": "list_has_any({a}, {b})", "contains": "contains({a}, {b})"},
    "spark": {"has_any": "arrays_overlap({a}, {b})", "contains": "instr({a}, {b}) > 0"},
}
Dialect = Literal["duckdb", "spark"]


def _comparisons(dialect: Dialect) -> list[Any]:
    sql = _SQL[dialect]
    has_any, contains = sql["has_any"].format, sql["contains"].format
    name = cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            _null("name_n"),
            cll.ExactMatchLevel("name_n").configure(tf_adjustment_column="name_n"),
            cll.CustomLevel(has_any(a="names_l", b="names_r"), "other_name"),
            cll.CustomLevel(
                f"({contains(a='name_n_l', b=repr('_'))} OR {contains(a='name_n_r', b=repr('_'))})"
                " AND length(name_n_l) = length(name_n_r)"
                " AND (name_n_l LIKE name_n_r OR name_n_r LIKE name_n_l)",
                "legacy",
            ),
            cll.DamerauLevenshteinLevel("name_n", 1),
            cll.ExactMatchLevel("name_given"),
            cll.ElseLevel(),
        ],
    )
    kana = cl.CustomComparison(
        output_column_name="kana",
        comparison_levels=[
            _null("kana_n"),
            cll.ExactMatchLevel("kana_n").configure(tf_adjustment_column="kana_n"),
            cll.ExactMatchLevel("kana_f"),
            # Married: the given name's reading agrees and the name agrees through an
            # earlier name — the surname's reading is expected to differ then.
            cll.CustomLevel(
                f"kana_given_l = kana_given_r AND {has_any(a='names_l', b='names_r')}"
                " AND name_n_l <> name_n_r",
                "married",
            ),
            cll.DamerauLevenshteinLevel("kana_f", 1),
            cll.ExactMatchLevel("kana_given"),
            cll.ElseLevel(),
        ],
    )
    birth = cl.CustomComparison(
        output_column_name="birth",
        comparison_levels=[
            _null("birth"),
            cll.ExactMatchLevel("birth"),
            cll.DamerauLevenshteinLevel("birth", 1),
            cll.CustomLevel(
                "substr(birth_l, 1, 4) = substr(birth_r, 1, 4)"
                " AND substr(birth_l, 5, 2) = substr(birth_r, 7, 2)"
                " AND substr(birth_l, 7, 2) = substr(birth_r, 5, 2)",
                "day_month_swapped",
            ),
            cll.ElseLevel(),
        ],
    )
    sex = cl.CustomComparison(
        output_column_name="sex",
        comparison_levels=[_null("sex"), cll.ExactMatchLevel("sex"), cll.ElseLevel()],
    )
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            _null("addr_n"),
            cll.ExactMatchLevel("addr_n").configure(tf_adjustment_column="addr_n"),
            cll.ExactMatchLevel("addr_base"),
            cll.CustomLevel(has_any(a="addrs_l", b="addrs_r"), "former"),
            cll.ExactMatchLevel("addr_town"),
            cll.ElseLevel(),
        ],
    )
    number = cl.CustomComparison(
        output_column_name="my_number",
        comparison_levels=[_null("mynum"), cll.ExactMatchLevel("mynum"), cll.ElseLevel()],
    )
    return [name, kana, birth, sex, address, number]


def _rule(sql: str) -> BlockingRuleCreator:
    return CustomRule(sql)


def settings(dialect: Dialect = "duckdb") -> SettingsCreator:
    """The untrained model: comparisons and blocking rules, link-only."""
    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="uid",
        comparisons=_comparisons(dialect),
        blocking_rules_to_generate_predictions=[_rule(r) for r in BLOCKING_RULES],
        # The gamma (level) columns come with the matching columns only; the rules of
        # renkei.linkage.decide read the levels.
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=True,
    )


TF_COLUMNS: Final = ("name_n", "kana_n", "addr_n")
"""Columns whose exact agreement is weighted by how common the value is."""


def term_frequencies(db: DuckDBAPI, registry: SplinkDataFrame) -> dict[str, SplinkDataFrame]:
    """How common each name, reading and address is *in the registry*.

    Computed once from the registry rather than per batch of records, so that a value's
    weight does not depend on which batch a record falls in (and a resumed run scores
    exactly as an uninterrupted one).
    """
    tables = {}
    for column in TF_COLUMNS:
        relation = db._con.sql(
            f"SELECT {column}, count(*) / sum(count(*)) OVER () AS tf_{column} "  # noqa: S608
            f"FROM {registry.physical_name} WHERE {column} IS NOT NULL GROUP BY {column}"
        )
        tables[column] = db.register(relation.to_arrow_table(), table_name=f"registry_tf_{column}")
    return tables


def build_linker(
    db: DuckDBAPI,
    registry: SplinkDataFrame,
    records: SplinkDataFrame,
    model: Any,
    frequencies: dict[str, SplinkDataFrame],
) -> Linker:
    """A linker of ``records`` to ``registry`` with ``model`` (settings or a trained dict)."""
    linker = Linker([registry, records], model, log_level=None)
    # splink caches intermediate tables per connection; a new batch must not see the last's.
    linker.table_management.invalidate_cache()  # type: ignore[no-untyped-call]  # splink leaves it unannotated
    for column, table in frequencies.items():
        linker.table_management.register_term_frequency_lookup(table, column)
    return linker


def train(
    db: DuckDBAPI,
    registry: SplinkDataFrame,
    records: SplinkDataFrame,
    frequencies: dict[str, SplinkDataFrame],
) -> dict[str, Any]:
    """Estimate the model's parameters from the data; return the trained model (a dict).

    ``records`` should be a sample (tens of thousands are plenty): EM needs enough
    matches to see, not every record.
    """
    linker = build_linker(db, registry, records, settings(), frequencies)
    training = linker.training
    training.estimate_probability_two_random_records_match(
        [
            "l.name_n = r.name_n AND l.kana_n = r.kana_n AND l.birth = r.birth"
            " AND l.addr_base = r.addr_base",
            "l.mynum = r.mynum AND l.birth = r.birth AND l.kana_f = r.kana_f",
        ],
        recall=0.7,
    )
    training.estimate_u_using_random_sampling(max_pairs=2_000_000, seed=1)
    training.estimate_parameters_using_expectation_maximisation(
        "l.birth = r.birth", record_sample_proportion=1.0
    )
    training.estimate_parameters_using_expectation_maximisation(
        "l.kana_f = r.kana_f AND l.addr_town = r.addr_town", record_sample_proportion=1.0
    )
    model: dict[str, Any] = linker.misc.save_model_to_json(None)
    return model


def for_dialect(model: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    """The trained ``model`` with its SQL written for another splink backend.

    Every level keeps its trained m and u probabilities; only the SQL changes (``spark``:
    ``arrays_overlap`` for DuckDB's ``list_has_any``, ``instr`` for ``contains``, and
    splink's own rendering of its library levels). Train on DuckDB over a sample, score
    on Spark over everything (``docs/linkage.md``).
    """
    rendered_settings = settings(dialect).get_settings(dialect)
    target: dict[str, Any] = rendered_settings.as_dict()  # type: ignore[no-untyped-call]  # splink leaves it unannotated
    out = {**model, "sql_dialect": dialect}
    out["blocking_rules_to_generate_predictions"] = target["blocking_rules_to_generate_predictions"]
    comparisons = []
    for trained, rendered in zip(model["comparisons"], target["comparisons"], strict=True):
        levels = [
            {**level, "sql_condition": new["sql_condition"]}
            for level, new in zip(
                trained["comparison_levels"], rendered["comparison_levels"], strict=True
            )
        ]
        comparisons.append({**trained, "comparison_levels": levels})
    out["comparisons"] = comparisons
    return out
