"""Where the hub's time goes per attribute request, without Kafka.

Run: ``.venv/bin/python -m benchmarks.profile_hub [strict|trust-acl] [count]``

Builds a hub with a directory and holdings in memory, feeds it signed attribute requests
as consumer records, and prints µs per request for ``Hub.handle`` plus a cProfile of the
top functions. The baseline beside it is decoding the same bytes alone, so the figure
reads as "how many decodes' worth of work one request costs".
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from hub_stream.hub import Hub
from hub_stream.records import Holding
from hub_stream.settings import HubSettings
from renkei.crypto import KeyRing, MasterSecret, SealingKeyPair, audit_key, keystore
from renkei.envelope import sign_message
from renkei.operator.directory_file import load_directory_file
from renkei.operator.publish import SENDERS, directory_entries, init_keys
from renkei.topics import Topics
from schemas.models import AttributeRequest, Header, HpkeSuite


@dataclass
class Record:
    """The fields of an aiokafka ConsumerRecord the hub reads."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


def build(mode: str, count: int) -> tuple[Hub, list[Record]]:
    keys = Path(tempfile.mkdtemp())
    init_keys(keys)
    topics = Topics("p.")
    master = MasterSecret.from_file(keys / "master.key")
    # The key folder holds the pinned operators' and registry's bundles the hub reads.
    settings = HubSettings(signatures=mode, key_dir=keys)  # type: ignore[arg-type]
    hub = Hub(topics, KeyRing(master), keystore.load_hub_signing_key(keys), settings)
    file = load_directory_file()
    ids = [a.agency_id for a in file.agencies] + [s[0] for s in SENDERS]
    public = {i: keystore.load(keys, i).public() for i in ids}
    for entry in directory_entries(file, public, SENDERS):
        hub.directory.apply(entry)
    scenario = next(
        s for s in file.scenarios if s.requester == "city-shinagawa" and s.provider == "jps"
    )
    city = keystore.load(keys, "city-shinagawa")
    reply = SealingKeyPair.generate()
    records = []
    for i in range(count):
        id_code = i.to_bytes(16, "big")
        code = hub.links.mint("city-shinagawa", id_code)
        holding = Holding(agency="jps", record_ref="x", capacity="", since_ms=0)
        hub.holdings.put(f"{audit_key(hub.keyring, id_code)}|jps", holding)
        header = Header.new("city-shinagawa")
        request = AttributeRequest(
            header=header, request_id=f"r{i}", requester_link_code=code, provider="jps",
            scenario_id=scenario.scenario_id, items=scenario.items[:1],
            reply_public_key=reply.public_bytes, hpke_suite=HpkeSuite.X25519,
            deadline=header.sent_at + timedelta(hours=1),
        )  # fmt: skip
        value = hub.codec.encode(sign_message(request, city.signing, hub.codec))
        records.append(Record(topics.agency_out("city-shinagawa"), 0, i, code.encode(), value))
    hub.holdings.commit()
    return hub, records


def main(mode: str = "trust-acl", count: int = 5000) -> None:
    hub, records = build(mode, count)
    started = time.perf_counter()
    for r in records:
        hub.codec.decode(r.value)
    decode_us = (time.perf_counter() - started) / count * 1e6
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    outputs = hub.handle(records)
    profile.disable()
    handle_us = (time.perf_counter() - started) / count * 1e6
    print(
        f"signatures={mode}: Hub.handle {handle_us:.1f} µs per request (under cProfile), "
        f"{len(outputs) / count:.1f} records written per request; baseline decode alone "
        f"{decode_us:.1f} µs; ratio {handle_us / decode_us:.1f}x"
    )
    pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "trust-acl",
         int(sys.argv[2]) if len(sys.argv) > 2 else 5000)  # fmt: skip
