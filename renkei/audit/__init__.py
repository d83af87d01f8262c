"""The audit trail's tools: verify it, replay it, trace an exchange, rebuild state from it.

``hub.audit`` is written by the hub (:mod:`hub_stream.audit`, :mod:`hub_stream.checkpoints`)
and read here. ``docs/audit.md`` describes the format, what ``verify`` proves and how the
portal (:mod:`renkei.portal`) authenticates citizens.
"""

from __future__ import annotations

from renkei.auditchain import (
    GENESIS,
    AuditSigner,
    TrustedKeys,
    chain_hash,
    key_id,
    load_or_create_signer,
)

from .replay import Entry, Filter
from .verify import Finding, PartitionVerifier, VerifyReport, verify_trail

__all__ = [
    "GENESIS",
    "AuditSigner",
    "Entry",
    "Filter",
    "Finding",
    "PartitionVerifier",
    "TrustedKeys",
    "VerifyReport",
    "chain_hash",
    "key_id",
    "load_or_create_signer",
    "verify_trail",
]
