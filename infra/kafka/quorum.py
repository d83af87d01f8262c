"""Which node of a local KRaft cluster is the active controller, for the fault drills.

Not from a metadata request: a KRaft broker answers ``controller_id`` with a random live
broker (clients may not reach the controllers), so aiokafka's ``controller_id`` and
``describe_cluster`` name no controller. Every voter instead records the election it
knows of in ``<log.dirs>/__cluster_metadata-0/quorum-state`` (JSON: ``leaderId``,
``leaderEpoch``), rewritten at each election; the running nodes' file with the highest
epoch names the leader, that is the active controller.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .cluster import LocalCluster

__all__ = ["active_controller", "leader_of"]

QUORUM_STATE = Path("data", "__cluster_metadata-0", "quorum-state")


def leader_of(states: Iterable[str]) -> int | None:
    """The leader named by the highest epoch among ``quorum-state`` texts, if any.

    ``None`` while an election runs (the newest epoch has no leader yet, ``leaderId``
    -1) or when no text is readable JSON (a file being rewritten).
    """
    best: tuple[int, int] | None = None
    for text in states:
        try:
            state = json.loads(text)
            epoch, leader = int(state["leaderEpoch"]), int(state["leaderId"])
        except (ValueError, KeyError, TypeError):
            continue
        if best is None or epoch > best[0] or (epoch == best[0] and leader >= 0):
            best = (epoch, leader)
    if best is None or best[1] < 0:
        return None
    return best[1]


def active_controller(cluster: LocalCluster) -> int | None:
    """The node id of ``cluster``'s active controller, as its running nodes know it.

    ``None`` while no running node knows one (an election), and when the leader they
    name is not running (the old leader was just killed: the others have not noticed).
    """
    state = cluster.state()
    if state is None:
        return None
    running = cluster.running_pids()
    texts = []
    for node in state.nodes:
        if node.node_id in running:
            try:
                texts.append(Path(node.directory, QUORUM_STATE).read_text())
            except OSError:
                continue
    leader = leader_of(texts)
    return leader if leader in running else None
