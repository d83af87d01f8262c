"""Score one batch of records against the registry and decide each record.

splink generates and scores the candidate pairs in DuckDB; DuckDB then keeps each
record's best few candidates (window ranking), and :func:`renkei.linkage.decide.decide`
makes the decision in Python — the rules are easier to read, test and audit there than
in SQL, and at a handful of candidates per record they cost little.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Final

import pyarrow as pa
from splink import DuckDBAPI
from splink.internals.splink_dataframe import SplinkDataFrame

from .decide import Candidate, Decision, Policy, decide
from .model import LEVELS, build_linker

__all__ = ["DECISION_SCHEMA", "score_batch"]

DECISION_SCHEMA: Final = pa.schema(
    [
        ("record_ref", pa.string()),
        ("outcome", pa.string()),
        ("resident_code", pa.string()),
        ("score", pa.float64()),
        ("candidates", pa.string()),
        ("reason", pa.string()),
    ]
)
"""One row per record: the decision, as the output files need it."""

_KEEP: Final = 5


def _candidates_sql(predictions: str) -> str:
    gammas = ", ".join(f"gamma_{c}" for c in LEVELS)
    # Both names are ours (splink's table name, the model's comparisons), never input.
    return f"""
        WITH pairs AS (
            SELECT
                CASE WHEN source_dataset_l = 'records' THEN uid_l ELSE uid_r END
                    AS record_ref,
                CASE WHEN source_dataset_l = 'records' THEN uid_r ELSE uid_l END
                    AS resident_code,
                match_weight, match_probability, {gammas}
            FROM {predictions}
        ), ranked AS (
            SELECT *, row_number() OVER (
                PARTITION BY record_ref ORDER BY match_weight DESC, resident_code
            ) AS rank
            FROM pairs
        )
        SELECT * EXCLUDE (rank) FROM ranked WHERE rank <= {_KEEP}
           OR gamma_my_number = 1
    """  # noqa: S608


def score_batch(
    db: DuckDBAPI,
    registry: SplinkDataFrame,
    records: SplinkDataFrame,
    record_refs: list[str],
    model: dict[str, Any],
    frequencies: dict[str, SplinkDataFrame],
    policy: Policy,
) -> pa.Table:
    """Decide every record of ``records`` (whose ids are ``record_refs``) with ``model``.

    :param frequencies: the registry's term frequencies (:func:`~.model.term_frequencies`).
    """
    linker = build_linker(db, registry, records, model, frequencies)
    # Pairs below the review threshold can neither link nor send a record to review
    # (the runner-up that matters for rule 2 scores far above it), so splink drops them.
    floor = math.log2(policy.review_probability / (1 - policy.review_probability))
    predictions = linker.inference.predict(threshold_match_weight=floor)
    rows = db._con.sql(_candidates_sql(predictions.physical_name)).fetchall()
    predictions.drop_table_from_database_and_remove_from_cache()
    by_record: dict[str, list[Candidate]] = defaultdict(list)
    names = list(LEVELS)
    for ref, code, weight, probability, *gammas in rows:
        by_record[ref].append(
            Candidate(code, weight, probability, dict(zip(names, gammas, strict=True)))
        )
    decisions = [(ref, decide(by_record.get(ref, ()), policy)) for ref in record_refs]
    return _table(decisions)


def _table(decisions: list[tuple[str, Decision]]) -> pa.Table:
    return pa.table(
        {
            "record_ref": [ref for ref, _ in decisions],
            "outcome": [d.outcome for _, d in decisions],
            "resident_code": [d.resident_code for _, d in decisions],
            "score": [round(d.score, 6) for _, d in decisions],
            "candidates": [";".join(d.candidates) for _, d in decisions],
            "reason": [d.reason for _, d in decisions],
        },
        schema=DECISION_SCHEMA,
    )
