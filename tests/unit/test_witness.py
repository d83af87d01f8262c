"""The tree-head witness: an honest log is accepted; forks, rollbacks, gaps and forgeries alarm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from renkei.errors import ConfigurationError, CryptoError, WitnessAlarm
from renkei.witness import AlarmKind, Witness
from tests.heads import History, new_signer, trust_of


def alarms_counted(kind: AlarmKind) -> float:
    value = REGISTRY.get_sample_value("renkei_witness_alarms_total", {"kind": kind.value})
    assert value is not None  # every kind's series exists from import on
    return value


@pytest.fixture
def log() -> History:
    return History(new_signer())


@pytest.fixture
def witness(log: History) -> Witness:
    return Witness(trust_of(log.signer))


def refused(witness: Witness, data: bytes, kind: AlarmKind, **observe: int) -> WitnessAlarm:
    """Observe ``data``, which must raise an alarm of ``kind``; the head kept is unchanged
    and the metric counted it once."""
    before = dict(witness.latest)
    counted = alarms_counted(kind)
    with pytest.raises(WitnessAlarm) as caught:
        witness.observe(data, **observe)
    assert caught.value.kind == kind
    assert witness.latest == before
    assert alarms_counted(kind) == counted + 1
    assert witness.alarms[-1]["kind"] == kind.value
    return caught.value


def test_an_honest_sequence_is_accepted_head_by_head(log: History, witness: Witness) -> None:
    for n in (1, 1, 2, 5, 8, 1, 13):
        head = witness.observe(log.commit(n))
        assert head is not None
        assert head.size == log.tree.size
    assert witness.latest[0].root == log.tree.root()
    assert witness.alarms == []
    assert REGISTRY.get_sample_value("renkei_witness_tree_size", {"partition": "0"}) == 31


def test_the_same_head_twice_is_not_an_alarm(log: History, witness: Witness) -> None:
    data = log.commit(3)
    witness.observe(data)
    witness.observe(data)
    assert witness.accepted == 2
    assert witness.alarms == []


def test_two_heads_of_one_size_with_different_roots_are_a_split_view(
    log: History, witness: Witness
) -> None:
    witness.observe(log.commit(4))
    fork = log.fork(b"forged")
    log.append(3)
    witness.observe(log.head())
    fork.append(3)  # the same size, other records: signed with the same key
    alarm = refused(witness, fork.head(), AlarmKind.SPLIT_VIEW)
    assert (alarm.partition, alarm.kept_size, alarm.head_size) == (0, 7, 7)
    assert alarm.kept_root == log.tree.root()
    assert alarm.head_root == fork.tree.root()
    assert "two heads of size 7" in str(alarm)
    assert "partition 0" in str(alarm)


def test_a_larger_head_of_another_history_is_a_split_view(log: History, witness: Witness) -> None:
    log.commit(4)
    fork = log.fork(b"forged", keep=2)  # diverges inside what the witness saw
    witness.observe(log.head(previous=0))
    fork.append(6)
    # It claims to follow the head kept (size 4), with the proof its own tree gives.
    alarm = refused(witness, fork.head(previous=4), AlarmKind.SPLIT_VIEW)
    assert (alarm.kept_size, alarm.head_size, alarm.previous_size) == (4, 8, 4)
    assert "consistency proof fails" in str(alarm)


def test_a_head_claiming_an_older_predecessor_is_a_split_view(
    log: History, witness: Witness
) -> None:
    witness.observe(log.commit(2))
    witness.observe(log.commit(2))
    log.append(3)
    alarm = refused(witness, log.head(previous=2), AlarmKind.SPLIT_VIEW)
    assert (alarm.kept_size, alarm.head_size, alarm.previous_size) == (4, 7, 2)


def test_a_smaller_head_after_a_larger_one_is_a_rollback(log: History, witness: Witness) -> None:
    witness.observe(log.commit(3))
    witness.observe(log.commit(3))
    truncated = log.fork(b"honest", keep=3)
    alarm = refused(witness, truncated.head(previous=0), AlarmKind.ROLLBACK)
    assert (alarm.partition, alarm.kept_size, alarm.head_size) == (0, 6, 3)
    assert witness.latest[0].size == 6


def test_a_hidden_head_is_a_gap(log: History, witness: Witness) -> None:
    witness.observe(log.commit(2))
    log.commit(2)  # signed and written, never shown to this witness
    alarm = refused(witness, log.commit(2), AlarmKind.GAP)
    assert (alarm.kept_size, alarm.head_size, alarm.previous_size) == (2, 6, 4)
    assert "a head was hidden" in str(alarm)


def test_a_head_signed_by_an_unpinned_key_is_refused(log: History, witness: Witness) -> None:
    witness.observe(log.commit(2))
    stranger = History(new_signer())
    stranger.records, stranger.tree, stranger.last_size = log.records, log.tree, log.last_size
    alarm = refused(witness, stranger.commit(1), AlarmKind.BAD_SIGNATURE)
    assert isinstance(alarm, CryptoError)
    assert "not pinned" in str(alarm)
    assert alarm.head_size == 3


def test_a_tampered_head_and_bytes_that_are_no_head_are_refused(
    log: History, witness: Witness
) -> None:
    data = bytearray(log.commit(2))
    data[-40] ^= 1  # inside the signed body
    refused(witness, bytes(data), AlarmKind.BAD_SIGNATURE)
    alarm = refused(witness, b"not a head", AlarmKind.BAD_SIGNATURE, partition=2, offset=7)
    assert alarm.partition == 2
    assert witness.offsets[2] == 8  # read past: a restart does not raise it again


def test_a_head_on_another_partition_than_it_was_signed_for_is_refused(log: History) -> None:
    witness = Witness(trust_of(log.signer))
    alarm = refused(witness, log.commit(1), AlarmKind.BAD_SIGNATURE, partition=1, offset=0)
    assert "signed for partition 0" in str(alarm)
    assert witness.latest == {}


def test_partitions_are_witnessed_apart(log: History) -> None:
    other = History(log.signer, partition=1)
    witness = Witness(trust_of(log.signer))
    witness.observe(log.commit(5))
    witness.observe(other.commit(2))
    witness.observe(other.commit(2))
    assert {p: h.size for p, h in witness.latest.items()} == {0: 5, 1: 4}
    alarm = refused(witness, other.fork(b"x", keep=1).head(previous=0), AlarmKind.ROLLBACK)
    assert alarm.partition == 1


def test_on_alarm_is_called_with_the_alarm(log: History) -> None:
    seen: list[WitnessAlarm] = []
    witness = Witness(trust_of(log.signer), on_alarm=seen.append)
    witness.observe(log.commit(2))
    with pytest.raises(WitnessAlarm) as caught:
        witness.observe(log.fork(b"x", keep=1).head(previous=0))
    assert seen == [caught.value]


def test_the_state_file_keeps_heads_offsets_and_evidence(log: History, tmp_path: Path) -> None:
    path = tmp_path / "witness.json"
    witness = Witness(trust_of(log.signer), state_path=path)
    witness.observe(log.commit(3), offset=0)
    witness.observe(log.commit(3), offset=1)
    with pytest.raises(WitnessAlarm):
        witness.observe(log.fork(b"x", keep=2).head(previous=0), offset=2)
    witness.save()
    doc = json.loads(path.read_text())
    assert doc["format"] == "renkei-witness/1"
    assert doc["offsets"] == {"0": 3}
    assert [h["tree_size"] for h in doc["heads"]] == [6]
    assert doc["alarms"][0]["kept"]["tree_size"] == 6
    assert doc["alarms"][0]["head"]["tree_size"] == 2

    again = Witness.load(path, trust_of(log.signer))
    assert again.latest[0].data == witness.latest[0].data
    assert again.resume_offset(0) == 3
    # Heads before the offset read to were checked already: skipped, not a rollback.
    assert again.observe(log.fork(b"x", keep=2).head(previous=0), offset=1) is None
    assert again.export() == witness.export()


def test_a_restarted_witness_catches_a_log_rewritten_shorter(log: History, tmp_path: Path) -> None:
    path = tmp_path / "witness.json"
    witness = Witness(trust_of(log.signer), state_path=path)
    for offset in range(4):
        witness.observe(log.commit(2), offset=offset)
    witness.save()

    rewritten = log.fork(b"honest", keep=4)  # the same first records, the rest cut off
    rewritten.last_size = 0
    again = Witness.load(path, trust_of(log.signer))
    before = alarms_counted(AlarmKind.ROLLBACK)
    with pytest.raises(WitnessAlarm) as caught:
        again.check_end(0, 2)  # the topic now holds two heads where there were four
    assert caught.value.kind == AlarmKind.ROLLBACK
    assert (caught.value.partition, caught.value.kept_size) == (0, 8)
    assert "before offset 4" in str(caught.value)
    assert alarms_counted(AlarmKind.ROLLBACK) == before + 1
    # It reads the partition again from the beginning: each shorter head is a rollback.
    assert again.resume_offset(0) is None
    refused(again, rewritten.head(), AlarmKind.ROLLBACK, offset=0)
    assert again.latest[0].size == 8


def test_a_restarted_witness_catches_a_rewrite_padded_past_its_offset(
    log: History, tmp_path: Path
) -> None:
    path = tmp_path / "witness.json"
    witness = Witness(trust_of(log.signer), state_path=path)
    witness.observe(log.commit(5), offset=0)
    witness.save()
    rewritten = log.fork(b"honest", keep=1)
    rewritten.last_size = 0
    again = Witness.load(path, trust_of(log.signer))
    again.check_end(0, 5)  # padded with heads: long enough, so the heads themselves tell
    assert again.observe(rewritten.head(), offset=0) is None
    refused(again, rewritten.commit(1), AlarmKind.ROLLBACK, offset=3)


def test_a_state_file_with_a_forged_head_is_not_loaded(log: History, tmp_path: Path) -> None:
    path = tmp_path / "witness.json"
    witness = Witness(trust_of(log.signer), state_path=path)
    witness.observe(log.commit(1))
    witness.save()
    with pytest.raises(ConfigurationError, match="not pinned"):
        Witness.load(path, trust_of(new_signer()))
    path.write_text('{"format": "something else"}')
    with pytest.raises(ConfigurationError, match="not a witness state"):
        Witness.load(path, trust_of(log.signer))


def test_alarm_kinds_are_the_metric_labels() -> None:
    assert {k.value for k in AlarmKind} == {"split-view", "rollback", "gap", "bad-signature"}


def test_a_reader_that_replays_from_the_beginning_must_reach_the_head_kept(
    log: History, witness: Witness
) -> None:
    witness.observe(log.commit(3))
    witness.observe(log.commit(4))
    witness.check_reached(0, 7)  # the replay found the head kept again
    witness.check_reached(0, 9)  # or beyond it
    witness.check_reached(1, None)  # a partition it keeps nothing of
    before = alarms_counted(AlarmKind.ROLLBACK)
    for reached in (3, None):  # the replay ended before it: the trail was cut back
        with pytest.raises(WitnessAlarm) as caught:
            witness.check_reached(0, reached)
        assert caught.value.kind == AlarmKind.ROLLBACK
        assert caught.value.partition == 0
        assert caught.value.kept_size == 7
    assert alarms_counted(AlarmKind.ROLLBACK) == before + 2
    assert witness.latest[0].size == 7  # the head kept stays
