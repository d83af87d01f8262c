"""Refusals: every "no" the hub says is a typed :class:`Refusal` with an error code.

A flow raises :class:`Refusal`; the hub turns it into a ``HubError`` to the sender (same
code), an audit record (same code) and a counter (same code). Never silence.
"""

from __future__ import annotations

from schemas.models import RETRIABLE_CODES, ErrorCode

__all__ = ["Refusal"]


class Refusal(Exception):
    """The hub refuses the message it is handling.

    :param code: the error code the sender, the audit trail and the metrics see.
    :param detail: a sentence for the sender's engineers; never personal data.
    :param audit_key: the person concerned, when the hub got as far as knowing them, so
        the refusal shows in that person's history.
    """

    def __init__(self, code: ErrorCode, detail: str, audit_key: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.audit_key = audit_key

    @property
    def retriable(self) -> bool:
        return self.code in RETRIABLE_CODES
