"""Bulk initial linkage (紐付け): tie an agency's existing records to registry persons.

Offline, at the registry's side, no Kafka: ``renkei link match`` reads the registry and an
agency's file (CSV or Parquet), scores candidate pairs with a Fellegi–Sunter model
trained on the data itself (splink on DuckDB, :mod:`renkei.linkage.model`) over
Japanese-aware keys (:mod:`renkei.linkage.japanese`, :mod:`renkei.linkage.dates`), and
decides each record conservatively (:mod:`renkei.linkage.decide`): linked, review or not
found. ``docs/linkage.md`` is the operator's guide.
"""

from __future__ import annotations

from .decide import Candidate, Decision, Policy, decide
from .errors import LinkageError, LinkageInputError, ResumeMismatchError
from .run import Summary, match_files

__all__ = [
    "Candidate",
    "Decision",
    "LinkageError",
    "LinkageInputError",
    "Policy",
    "ResumeMismatchError",
    "Summary",
    "decide",
    "match_files",
]
