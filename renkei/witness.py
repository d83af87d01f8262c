"""A witness of the audit trail's signed tree heads: catches a split view or a rollback.

The hub signs a tree head per ``hub.audit`` partition on every commit that adds records
(:mod:`renkei.treehead`), each with the consistency proof from the previous head. A
:class:`Witness` keeps, per partition, the latest head it accepted, and checks every new
one against it with the pinned audit keys (:class:`~renkei.auditchain.TrustedKeys`):

=================  ==============================================================
new head           verdict
=================  ==============================================================
not signed by a    ``bad-signature``
pinned key
same size          the roots must match, else ``split-view``
smaller            ``rollback``
larger             it must follow the head kept (``previous_size`` equal to its
                   size, else ``gap``: a head was hidden, or ``split-view`` when it
                   claims to follow an older one) and its consistency proof must
                   verify from the kept root (else ``split-view``)
=================  ==============================================================

On an alarm the witness keeps the head it had (a bad head is never adopted), counts
``renkei_witness_alarms_total{kind}``, records the alarm with both heads' exports as
evidence (:attr:`Witness.alarms`) and raises :class:`~renkei.errors.WitnessAlarm`.

**Offsets.** A witness reading a topic passes each head's offset: heads at offsets before
the one it has read to were checked already (after a restart it resumes there) and are
skipped, so re-reading a topic is never mistaken for a rollback; :meth:`Witness.check_end`
turns a partition that now ends before that offset (the topic rewritten shorter) into a
``rollback`` and reads it again from its beginning, checking every head against the one
kept. Offsets belong to one topic: a witness of ``hub.audit`` (the portal) and one of
``hub.audit.heads`` (an agency) keep separate state files.

The state file (:meth:`Witness.save`, atomically replaced) is public: the heads' exports
(``renkei-tree-head/1``), the offsets, the last alarms.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from prometheus_client import Counter, Gauge

from renkei.auditchain import TrustedKeys
from renkei.errors import ConfigurationError, ContractError, SignatureError, WitnessAlarm
from renkei.treehead import SignedHead
from schemas.codec import Codec, default_codec

__all__ = ["ALARMS", "STATE_FORMAT", "TREE_SIZE", "AlarmKind", "Witness"]

STATE_FORMAT: Final = "renkei-witness/1"
_KEEP_ALARMS: Final = 100  # the evidence kept in the state file: the last alarms


class AlarmKind(StrEnum):
    """What a witness caught (:class:`~renkei.errors.WitnessAlarm` ``kind``, the metric's label)."""

    SPLIT_VIEW = "split-view"
    ROLLBACK = "rollback"
    GAP = "gap"
    BAD_SIGNATURE = "bad-signature"


ALARMS: Final = Counter(
    "renkei_witness_alarms_total", "Alarms raised by audit tree-head witnesses, by kind", ["kind"]
)
TREE_SIZE: Final = Gauge(
    "renkei_witness_tree_size", "Size of the latest tree head a witness accepted", ["partition"]
)
for _kind in AlarmKind:  # every series exists from the start, at 0: increase() sees the first
    ALARMS.labels(kind=_kind.value)


def _short(root: bytes) -> str:
    return root.hex()[:16] + "…"


def _verdict(head: SignedHead, kept: SignedHead) -> tuple[AlarmKind, str] | None:
    """What is wrong with ``head`` (signature checked) after ``kept``; ``None``: nothing."""
    size, previous = head.size, head.head.previous_size
    if size == kept.size:
        if head.root == kept.root:
            return None
        roots = f"root {_short(kept.root)} kept, {_short(head.root)} new"
        return AlarmKind.SPLIT_VIEW, f"two heads of size {size}: {roots}"
    if size < kept.size:
        return AlarmKind.ROLLBACK, f"a head of size {size} after the head of size {kept.size}"
    if previous > kept.size:
        return AlarmKind.GAP, (
            f"the head of size {size} follows size {previous}, but the last head seen is "
            f"of size {kept.size}: a head was hidden"
        )
    if previous < kept.size:
        return AlarmKind.SPLIT_VIEW, (
            f"the head of size {size} follows size {previous}, but the head seen after "
            f"size {previous} is of size {kept.size}"
        )
    if not head.extends(kept):
        return AlarmKind.SPLIT_VIEW, (
            f"the head of size {size} does not extend the head of size {kept.size} kept "
            "(its consistency proof fails)"
        )
    return None


class Witness:
    """The latest accepted tree head per partition, and the check of every new one.

    :param trusted: the pinned audit keys (``audit-trust.json``).
    :param codec: the codec; the process-wide one by default.
    :param state_path: where :meth:`save` keeps the state; ``None``: in memory only.
    :param on_alarm: called with every alarm, after it is recorded and counted.
    """

    def __init__(
        self,
        trusted: TrustedKeys,
        codec: Codec | None = None,
        *,
        state_path: Path | None = None,
        on_alarm: Callable[[WitnessAlarm], object] | None = None,
    ) -> None:
        self.trusted = trusted
        self.codec = codec if codec is not None else default_codec()
        self.state_path = state_path
        self.on_alarm = on_alarm
        self.latest: dict[int, SignedHead] = {}
        """The latest head accepted, per partition."""
        self.offsets: dict[int, int] = {}
        """Per partition, the offset after the last head observed (where to resume)."""
        self.alarms: list[dict[str, Any]] = []
        """The last alarms, each with its message and both heads' exports (evidence)."""
        self.accepted = 0
        """Heads accepted by this instance (re-reads of the kept head included)."""
        self._dirty = False

    @classmethod
    def load(
        cls,
        state_path: Path,
        trusted: TrustedKeys,
        codec: Codec | None = None,
        *,
        on_alarm: Callable[[WitnessAlarm], object] | None = None,
    ) -> Witness:
        """The witness kept in ``state_path``, or a new one if the file does not exist.

        :raises ConfigurationError: the file is not a witness state, or holds a head that
            is not signed by a pinned key.
        """
        witness = cls(trusted, codec, state_path=state_path, on_alarm=on_alarm)
        if not state_path.exists():
            return witness
        try:
            doc = json.loads(state_path.read_text())
            if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
                raise ContractError(f"not a witness state (format {STATE_FORMAT})")
            for export in doc["heads"]:
                head = SignedHead.from_json(export, witness.codec)
                head.check(trusted, witness.codec)
                witness.latest[head.partition] = head
            witness.offsets = {int(p): int(o) for p, o in doc["offsets"].items()}
            witness.alarms = list(doc.get("alarms", []))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigurationError(f"cannot read the witness state {state_path}: {exc}") from exc
        except (ContractError, SignatureError) as exc:
            raise ConfigurationError(f"{state_path}: {exc}") from exc
        for head in witness.latest.values():
            TREE_SIZE.labels(partition=str(head.partition)).set(head.size)
        return witness

    def resume_offset(self, partition: int) -> int | None:
        """Where to resume reading ``partition``; ``None``: from its beginning."""
        return self.offsets.get(partition)

    def export(self) -> list[dict[str, Any]]:
        """The latest heads' exports (``renkei-tree-head/1``), for ``verify --against``."""
        return [self.latest[p].to_json() for p in sorted(self.latest)]

    def observe(
        self, data: bytes, *, partition: int | None = None, offset: int | None = None
    ) -> SignedHead | None:
        """Check one tree head's bytes and adopt it if it extends the head kept.

        :param partition: the partition it was read from (a head must be signed for the
            partition it is on); by default the head's own.
        :param offset: its offset in that partition of the topic it was read from; a
            head before the offset already read to is skipped (``None`` is returned).
        :returns: the head now kept for its partition, or ``None`` for a skipped one.
        :raises WitnessAlarm: the head is refused (the head kept stays).
        """
        try:
            head: SignedHead | None = SignedHead.parse(data, self.codec)
        except ContractError:
            head = None
        on = partition if partition is not None else head.partition if head else -1
        if offset is not None:
            if offset < self.offsets.get(on, 0):
                return None
            self.offsets[on] = offset + 1
            self._dirty = True
        if head is None:
            raise self._alarm(AlarmKind.BAD_SIGNATURE, on, f"offset {offset}: not a tree head")
        if head.partition != on:
            raise self._alarm(
                AlarmKind.BAD_SIGNATURE, on,
                f"the head of size {head.size} is signed for partition {head.partition}",
                None, head,
            )  # fmt: skip
        kept = self.latest.get(on)
        self._check(head, kept)
        if kept is None or head.size > kept.size:
            self.latest[on] = head
            self._dirty = True
            TREE_SIZE.labels(partition=str(on)).set(head.size)
        self.accepted += 1
        return self.latest[on]

    def _check(self, head: SignedHead, kept: SignedHead | None) -> None:
        try:
            head.check(self.trusted, self.codec)
        except SignatureError as exc:
            message = f"the head of size {head.size}: {exc}"
            raise self._alarm(AlarmKind.BAD_SIGNATURE, head.partition, message, kept, head) from exc
        if kept is None:
            return  # the first head seen: trusted on first use, checked from here on
        verdict = _verdict(head, kept)
        if verdict is not None:
            raise self._alarm(verdict[0], head.partition, verdict[1], kept, head)

    def check_end(self, partition: int, end_offset: int) -> None:
        """Check that ``partition`` still reaches the offset this witness has read to.

        A partition that ends before it was rewritten shorter: a ``rollback``. The
        witness then reads it again from its beginning (its offset is forgotten), checking
        every head there against the one it kept.

        :raises WitnessAlarm: the partition ends before the offset read to.
        """
        read_to = self.offsets.get(partition)
        if read_to is None or end_offset >= read_to:
            return
        del self.offsets[partition]
        self._dirty = True
        message = (
            f"the heads end at offset {end_offset}, before offset {read_to} this witness "
            "had read to (the topic was rewritten shorter)"
        )
        raise self._alarm(AlarmKind.ROLLBACK, partition, message, self.latest.get(partition))

    def check_reached(self, partition: int, size: int | None) -> None:
        """For a reader that reads a whole partition again from its beginning at every
        start (the portal, which needs every record): having reached its end, the largest
        head it found (``size``; ``None``: none) must be no smaller than the head kept.
        Skipping older heads on the way is then safe, and a trail rewritten shorter is
        still a ``rollback``.

        :raises WitnessAlarm: the partition ends before the head kept.
        """
        kept = self.latest.get(partition)
        if kept is None or (size is not None and size >= kept.size):
            return
        message = (
            f"having read the partition to its end, the largest head is of size {size or 0}, "
            f"before the head of size {kept.size} kept (the trail was rewritten shorter)"
        )
        raise self._alarm(AlarmKind.ROLLBACK, partition, message, kept)

    def _alarm(
        self, kind: AlarmKind, partition: int, message: str,
        kept: SignedHead | None = None, head: SignedHead | None = None,
    ) -> WitnessAlarm:  # fmt: skip
        alarm = WitnessAlarm(
            kind, partition, message,
            kept_size=kept.size if kept else None, kept_root=kept.root if kept else None,
            head_size=head.size if head else None, head_root=head.root if head else None,
            previous_size=head.head.previous_size if head else None,
        )  # fmt: skip
        self.alarms.append({
            "kind": kind.value, "partition": partition, "message": str(alarm),
            "kept": kept.to_json() if kept else None, "head": head.to_json() if head else None,
        })  # fmt: skip
        del self.alarms[:-_KEEP_ALARMS]
        self._dirty = True
        ALARMS.labels(kind=kind.value).inc()
        if self.on_alarm is not None:
            self.on_alarm(alarm)
        return alarm

    def save(self) -> None:
        """Write the state file if anything changed (a temporary file, synced, then renamed)."""
        if self.state_path is None or not self._dirty:
            return
        doc = {"format": STATE_FORMAT, "heads": self.export(),
               "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
               "alarms": self.alarms}  # fmt: skip
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}")
        with tmp.open("w") as out:
            out.write(json.dumps(doc, indent=1) + "\n")
            out.flush()
            os.fsync(out.fileno())  # a crash leaves the old state or the new, never half
        os.replace(tmp, self.state_path)
        self._dirty = False

    def observe_all(self, heads: Iterable[bytes]) -> list[WitnessAlarm]:
        """Observe each head in turn (no offsets); the alarms raised, in order."""
        raised = []
        for data in heads:
            try:
                self.observe(data)
            except WitnessAlarm as alarm:
                raised.append(alarm)
        return raised
