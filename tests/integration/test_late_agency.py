"""An agency enrolled after the hub started is consumed: the loop reads the agencies'
topics by name, the directory's list, and subscribes again when the directory grows.

Without the re-subscription the new agency's requests would sit unread in its ``.out``
topic and the enrolment below would never be answered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from consumers.provider import ProviderService
from producers.agency_client import AgencyClient
from producers.population import generate_population
from renkei.operator.directory_file import load_directory_file
from renkei.operator.publish import init_keys, publish
from renkei.topics import Topics
from schemas.models import EnrolmentOutcome, ForwardedRequest
from tests.integration.hub_env import hub_env, read_topic
from tests.integration.principals import Principals
from tests.integration.test_exchange import register_all

LATE = "jasso"
"""Enrolled late: a requester of the sample directory (S009: jasso → city-shinagawa)."""
PROVIDER = "city-shinagawa"


def directory_without(agency_id: str, folder: Path) -> Path:
    """The packaged sample directory without ``agency_id`` and its scenarios."""
    packaged = Path(__file__).parents[2] / "renkei" / "operator" / "data" / "directory.json"
    raw = json.loads(packaged.read_text(encoding="utf-8"))
    raw["agencies"] = [a for a in raw["agencies"] if a["agency_id"] != agency_id]
    raw["scenarios"] = [
        s for s in raw["scenarios"] if agency_id not in (s["requester"], s["provider"])
    ]
    path = folder / "directory-early.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


async def test_an_agency_enrolled_after_the_hub_started_is_answered(
    principals: Principals, topics: Topics, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    early = directory_without(LATE, tmp_path)
    async with hub_env(principals, topics, keys, directory=early) as env:
        subscribed = env.hub.loop_runner.subscribed() if env.hub.loop_runner else set()
        assert topics.agency_out(LATE) not in subscribed
        people = generate_population(2, seed=23)
        await register_all(env, people)
        # The operators enrol the agency: its keys, its logins and ACLs, its topics and
        # its signed directory entry, while the hub runs.
        init_keys(keys)
        if principals.secure:
            await principals.grant(load_directory_file(), topics)
        await publish(principals.settings("operator"), topics.prefix, keys, None)
        # What `renkei hub`'s faust agent does with hub.directory (hub_stream/app.py).
        records = await read_topic(
            env.kafka, topics.directory, lambda got: _lists(got, LATE), decode=False
        )
        for r in records:
            env.hub.apply_directory(r.key, r.value, f"{r.partition}:{r.offset}")
        assert env.hub.hub.directory.agency(LATE) is not None
        scenario = next(
            s for s in env.hub.hub.directory.scenarios.values()
            if s.requester == LATE and s.provider == PROVIDER
        )  # fmt: skip

        async def handler(request: ForwardedRequest) -> dict[str, Any]:
            return {item: f"value of {item}" for item in request.items}

        def client(agency: str) -> AgencyClient:
            return AgencyClient(
                agency, env.keys(agency), env.kafka_of(agency), env.topics, grace_s=5,
                hub_public_key=env.hub_key,
            )  # fmt: skip

        provider = ProviderService(
            PROVIDER, env.keys(PROVIDER), env.kafka_of(PROVIDER), env.topics, handler,
            hub_public_key=env.hub_key,
        )  # fmt: skip
        async with provider, client(PROVIDER) as city, client(LATE) as late:
            held = await city.enrol("S-1", my_number=people[0].my_number)
            assert held.outcome is EnrolmentOutcome.LINKED
            enrolled = await late.enrol("L-1", my_number=people[0].my_number)
            assert enrolled.outcome is EnrolmentOutcome.LINKED
            assert enrolled.link_code is not None
            values = await late.request(
                link_code=enrolled.link_code, provider=PROVIDER,
                scenario_id=scenario.scenario_id, items=scenario.items[:1],
            )  # fmt: skip
        assert values == {scenario.items[0]: f"value of {scenario.items[0]}"}


def _lists(records: list[Any], agency_id: str) -> bool:
    return any(r.key == f"agency/{agency_id}".encode() for r in records)
