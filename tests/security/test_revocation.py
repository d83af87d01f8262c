"""Taking a leaked agency's access away: the operators publish its entry ``active = false``.

From then on, whatever it sends with its genuine key is refused ``UNKNOWN_AGENCY`` and
audited; it is answered on no topic, asked nothing as a provider, and the other
agencies carry on. In memory (``tests/unit/hub_world.py``): the directory record goes
through the feed every worker restores and follows.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hub_stream.directory import entry_key
from hub_stream.directory_feed import DirectoryFeed
from renkei.crypto import keystore
from renkei.envelope import encode_signed
from schemas.codec import default_codec
from schemas.models import (
    AttributeRequest,
    AuditRecord,
    AuditStep,
    EnrolmentOutcome,
    EnrolmentResult,
    Header,
    HpkeSuite,
    HubError,
)
from tests.unit.hub_world import NUMBERS, World, codes_of

CODEC = default_codec()
LEAKED = "city-osaka"


def test_a_retired_agency_is_refused_everything_and_nobody_else_notices(tmp_path: Path) -> None:
    w = World(tmp_path / "keys")
    w.run(w.registration("10000000000", NUMBERS[0]))
    (leaked_code,) = codes_of(w.run(w.enrolment(LEAKED, NUMBERS[0])))
    (jps_code,) = codes_of(w.run(w.enrolment("jps", NUMBERS[0])))

    hub = w.hub
    feed = DirectoryFeed(
        w.topics.directory, lambda: hub.directory, CODEC, hub.roots, hub.metrics,
        keystore.load_hub_signing_key(w.key_dir).public_bytes,
    )  # fmt: skip
    retired = hub.directory.agencies[LEAKED].model_copy(
        update={"header": Header.new("operator"), "active": False}
    )
    assert feed.apply(entry_key(retired), encode_signed(retired, w.keys("operator").signing, CODEC))

    # With its genuine key and its genuine code: an enrolment, and a request to jps (S004).
    header = Header.new(LEAKED)
    ask = AttributeRequest(
        header=header, request_id="r-1", requester_link_code=leaked_code, provider="jps",
        scenario_id="S004", items=("pension.benefit_status",),
        reply_public_key=w.reply.public_bytes, hpke_suite=HpkeSuite.X25519,
        deadline=header.sent_at + timedelta(minutes=5),
    )  # fmt: skip
    attempts = [w.enrolment(LEAKED, NUMBERS[0]), w.signed(w.topics.agency_out(LEAKED), ask, LEAKED)]
    outputs = hub.handle(attempts)
    hub.commit()
    assert [o for o in outputs if o.topic.startswith(f"{w.topics.prefix}agency.")] == []
    audit = [CODEC.decode(o.value) for o in outputs if o.topic == w.topics.audit and o.value]
    refusals = [(a.step, a.error_code, a.actor) for a in audit if isinstance(a, AuditRecord)]
    assert refusals == [(AuditStep.REFUSED, "UNKNOWN_AGENCY", LEAKED)] * 2

    # Nobody may ask it either (S007: jps asks city-osaka), and everyone else carries on.
    header = Header.new("jps")
    to_leaked = ask.model_copy(update={
        "header": header, "request_id": "r-2", "requester_link_code": jps_code,
        "provider": LEAKED, "scenario_id": "S007", "items": ("resident_tax.income",),
    })  # fmt: skip
    answers = w.run(w.signed(w.topics.agency_out("jps"), to_leaked, "jps"),
                    w.enrolment("city-shinagawa", NUMBERS[0]))  # fmt: skip
    errors = [(m.code, m.request_id) for m in answers if isinstance(m, HubError)]
    assert errors == [("UNKNOWN_AGENCY", "r-2")]
    results = [m.outcome for m in answers if isinstance(m, EnrolmentResult)]
    assert results == [EnrolmentOutcome.LINKED]
