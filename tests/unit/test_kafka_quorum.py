"""The active controller is read from the voters' ``quorum-state`` files."""

from __future__ import annotations

import json

from infra.kafka.quorum import leader_of


def _state(leader: int, epoch: int) -> str:
    return json.dumps({"leaderId": leader, "leaderEpoch": epoch, "votedId": -1})


def test_the_highest_epoch_names_the_leader() -> None:
    # A node that missed the last election still names the old leader, at an older epoch.
    assert leader_of([_state(1, 4), _state(3, 5), _state(3, 5)]) == 3


def test_an_election_in_progress_names_none() -> None:
    # A candidate writes the new epoch before any leader is known.
    assert leader_of([_state(1, 4), _state(-1, 5)]) is None


def test_a_follower_that_knows_the_leader_wins_over_a_candidate_of_the_same_epoch() -> None:
    assert leader_of([_state(-1, 5), _state(2, 5)]) == 2


def test_unreadable_files_are_skipped() -> None:
    assert leader_of(["", "{", json.dumps({"leaderId": 2}), _state(2, 1)]) == 2
    assert leader_of([]) is None
