"""The model's settings: levels in the order the decision rules read, and other backends."""

from __future__ import annotations

import json
from typing import Any

from renkei.linkage.model import LEVELS, Dialect, for_dialect, settings


def _rendered(dialect: Dialect) -> dict[str, Any]:
    rendered: dict[str, Any] = settings(dialect).get_settings(dialect).as_dict()  # type: ignore[no-untyped-call]  # splink leaves it unannotated
    return rendered


def test_levels_are_the_comparisons_of_the_model() -> None:
    model = _rendered("duckdb")
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        # splink numbers levels from the bottom: the else level is 0, the first is highest.
        assert len(levels) == len(LEVELS[comparison["output_column_name"]])


def test_a_duckdb_model_rendered_for_spark_keeps_its_parameters() -> None:
    trained = _rendered("duckdb")
    for comparison in trained["comparisons"]:
        for i, level in enumerate(comparison["comparison_levels"]):
            level["m_probability"], level["u_probability"] = 0.1 + i / 100, 0.2 + i / 100
    spark = for_dialect(trained, "spark")
    text = json.dumps(spark)
    assert spark["sql_dialect"] == "spark"
    assert "list_has_any" not in text
    assert "arrays_overlap(names_l, names_r)" in text
    for old, new in zip(trained["comparisons"], spark["comparisons"], strict=True):
        for a, b in zip(old["comparison_levels"], new["comparison_levels"], strict=True):
            assert (a.get("m_probability"), a.get("u_probability")) == (
                b.get("m_probability"),
                b.get("u_probability"),
            )
