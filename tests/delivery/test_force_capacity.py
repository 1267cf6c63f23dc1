"""Two levels of capacity: a force's own (its voice line, its rates) and the platform's shared
provider limits; a delivery takes both, and a finished call frees its line at both. Three forces,
the in-process limiters and the Redis ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.delivery.deliver import call_completed, deliver_chunk
from broadcast.delivery.dispatch import Chunk, RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.engine import create_db_engine, upgrade
from tests.delivery.factories import Person, RecordingChannel, add_people
from tests.support.forces import add_sharing_senders

VARS = {"headline": "Flood warning", "message": "Move to higher ground."}


@pytest.fixture(params=["memory", "redis"])
def platform(request: pytest.FixtureRequest, tmp_path) -> Iterator[dict[str, Runtime]]:  # type: ignore[no-untyped-def]
    redis_url = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushall()
    url = f"sqlite:///{tmp_path / 'forces.db'}"
    settings = Settings(
        _env_file=None,
        database_url=url,
        redis_url=redis_url,
        email_rate="4/1h",  # the relay's, shared by every force
        voice_rate=None,
        voice_concurrency=3,
        voice_lease_seconds=600.0,
    )
    engine = create_db_engine(url)
    upgrade(engine)
    channels = {name: RecordingChannel(name=name) for name in ("email", "voice")}
    met = Runtime(settings, engine=engine, channels=channels, force="default")
    # Named as the platform and sending as it, so they share its (recording) channels.
    suffolk = add_sharing_senders(
        engine, settings, "suffolk", {"voice_concurrency": 1, "email_rate": "2/1h"}
    )
    dyfed = add_sharing_senders(engine, settings, "dyfed-powys", {"voice_concurrency": 2})
    yield {"met": met, "suffolk": met.for_force(suffolk.id), "dyfed": met.for_force(dyfed.id)}
    engine.dispose()


def chunk_of(rt: Runtime, channel: str, people: int = 3) -> Chunk:
    add_people(rt.engine, [Person(channels=(channel,)) for _ in range(people)])
    # Urgent: routine calls may be held by quiet hours, which are not what this tests.
    alert = alerts.create_alert(
        rt, "community-alert", VARS, (channel,), Targeting(everyone=True), operator="t", urgent=True
    )
    dispatcher = RecordingDispatcher()
    approval.submit(rt, dispatcher, alert, operator=alert.operator)
    [chunk] = dispatcher.take()
    return chunk


def test_each_force_has_its_own_voice_line_inside_the_platforms(platform) -> None:  # type: ignore[no-untyped-def]
    met, suffolk, dyfed = platform["met"], platform["suffolk"], platform["dyfed"]
    calls = met.channel("voice")
    chunks = {rt.force.code: chunk_of(rt, "voice") for rt in (suffolk, dyfed, met)}
    # Suffolk's line takes one call at a time, Dyfed-Powys's two: the platform's 3 are then full
    assert deliver_chunk(suffolk, chunks["suffolk"]).sent == 1
    assert deliver_chunk(dyfed, chunks["dyfed-powys"]).sent == 2
    assert suffolk.force_concurrency().in_use(suffolk.force_key("voice")) == 1  # type: ignore[union-attr]
    assert met.concurrency().in_use("voice") == 3
    # So the Met, with no line of its own, waits for the platform's
    assert deliver_chunk(met, chunks["default"]).sent == 0
    # When Suffolk's call ends, its line frees at both levels
    first = calls.sent[0]
    assert call_completed(met, f"REC{first.delivery_id}") is True
    assert suffolk.force_concurrency().in_use(suffolk.force_key("voice")) == 0  # type: ignore[union-attr]
    assert met.concurrency().in_use("voice") == 2
    # The Met takes the platform's free line; Suffolk's own is free, but the platform's is not,
    # and the line it took at its own level goes back
    assert deliver_chunk(met, chunks["default"]).sent == 1
    assert deliver_chunk(suffolk, chunks["suffolk"]).sent == 0
    assert suffolk.force_concurrency().in_use(suffolk.force_key("voice")) == 0  # type: ignore[union-attr]
    assert len(calls.sent) == 4


def test_a_message_takes_its_forces_rate_and_the_platforms(platform) -> None:  # type: ignore[no-untyped-def]
    met, suffolk, dyfed = platform["met"], platform["suffolk"], platform["dyfed"]
    chunks = {rt.force.code: chunk_of(rt, "email") for rt in (suffolk, met, dyfed)}
    # Suffolk sends 2 an hour of its own, inside the relay's 4 an hour
    assert deliver_chunk(suffolk, chunks["suffolk"]).sent == 2
    # The Met has no rate of its own: it takes what is left of the relay's
    assert deliver_chunk(met, chunks["default"]).sent == 2
    assert deliver_chunk(dyfed, chunks["dyfed-powys"]).sent == 0
    assert met.limiter("email").usage("email") == 4
    assert suffolk.force_limiter("email").usage(suffolk.force_key("email")) == 2  # type: ignore[union-attr]
    # A force that sets no rate has no level of its own
    assert met.force_limiter("email") is None and dyfed.force_limiter("email") is None
