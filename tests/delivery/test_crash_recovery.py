"""A bad day, end to end: every worker SIGKILLed mid-alert, with the Procfile's sweeper running.

PostgreSQL, a private Redis, real `dramatiq workers` and `python -m workers.sweeper` processes, the
Twilio test server (its own process) and aiosmtpd, both a little slow so that requests are in
flight at the kill. Counted at the provider side: nobody is missed, a copy goes only to someone
whose request was in flight at the kill (and is flagged), and delivery resumes within 30 s.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcast.alerts import compose as alerts
from broadcast.delivery import recovery
from broadcast.delivery.requeue import REQUEUED_IN_DOUBT
from broadcast.store.tables import Delivery
from tests.delivery.factories import Person, add_people
from tests.delivery.processes import ROOT, start_workers, stop_workers, wait_until
from tests.delivery.test_workers_e2e import runtime, send, stack  # noqa: F401 - the fixture
from tests.support.keys import TEST_SECRET_KEY

PEOPLE = 240
PROCESSES = 2
# Requests one worker process has in flight at most: the Twilio channels' lanes, the SMTP pool.
TWILIO_LANES, SMTP_LANES = 8, 4
RECOVERY_SETTINGS = {
    "BROADCAST_SWEEP_INTERVAL": "1",
    "BROADCAST_WORKER_HEARTBEAT_INTERVAL": "0.5",
    "BROADCAST_WORKER_LAPSE_AFTER": "3",
    "BROADCAST_PROVIDER_ACCEPT_WINDOW": "3",
    "BROADCAST_DELIVERY_CHUNK_SIZE": "500",
}


@contextmanager
def sweeper(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The Procfile's `sweeper:` process."""
    full_env = start_env(env)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.sweeper"],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_workers(process)


def start_env(env: dict[str, str]) -> dict[str, str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
    base |= {"BROADCAST_QUIET_HOURS": "off", "BROADCAST_SECRET_KEY": TEST_SECRET_KEY}
    return base | env | {"PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("limited", [False, True], ids=["unlimited", "rate-limited"])
def test_worker_sigkill_mid_alert_loses_nobody(stack, limited: bool) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    twilio, smtp, log = stack["twilio"], stack["smtp"], stack["log"]
    env = stack["env"] | RECOVERY_SETTINGS
    if limited:
        env |= {"BROADCAST_SMS_RATE": "60/1s", "BROADCAST_EMAIL_RATE": "60/1s"}
        env |= {"BROADCAST_VOICE_RATE": "60/1s"}
    rt = runtime(env)
    add_people(rt.engine, [Person() for _ in range(PEOPLE)])
    # Given slow providers, so that every lane has a request out at any moment
    twilio.fail("slow", delay=0.05)
    smtp.data_delay = 0.05
    alert, _ = send(rt, ("sms", "email", "voice"))
    with sweeper(env, log):
        process = start_workers(env, log, processes=PROCESSES, threads=8)
        wait_until(lambda: len(twilio.requests) >= PEOPLE // 2, 60, "sending to be under way", log)
        # When every worker process is killed outright, mid-alert
        stop_workers(process, signal.SIGKILL)
        killed_at = time.time()
        at_kill = alerts.alert_status(rt, alert.id).states
        # and fresh ones start, as a process supervisor would start them
        process = start_workers(env, log, processes=PROCESSES, threads=8)
        try:
            wait_until(
                lambda: alerts.alert_status(rt, alert.id).done, 120, "the alert to finish", log
            )
        finally:
            stop_workers(process)
    # Then delivery resumed within 30 s of the kill
    resumed = min(
        (r.time for r in twilio.requests if r.time > killed_at + 0.5), default=float("inf")
    )
    assert resumed - killed_at < 30, resumed - killed_at
    assert any(s.get("sending") for s in at_kill.values()), at_kill  # the kill hit sends
    # and everyone got each message at least once: nothing lost
    sms = Counter(r.param("To") for r in twilio.requests if r.resource == "Messages" and r.sid)
    calls = Counter(r.param("To") for r in twilio.requests if r.resource == "Calls" and r.sid)
    emails = Counter(m.rcpt_tos[0] for m in smtp.messages)
    assert len(sms) == PEOPLE and len(calls) == PEOPLE and len(emails) == PEOPLE
    # and copies are no more than the requests that were in flight, each one flagged
    doubled = {
        "sms": sum(n - 1 for n in sms.values()),
        "voice": sum(n - 1 for n in calls.values()),
        "email": sum(n - 1 for n in emails.values()),
    }
    assert doubled["sms"] <= PROCESSES * TWILIO_LANES, doubled
    assert doubled["voice"] <= PROCESSES * TWILIO_LANES, doubled
    assert doubled["email"] <= PROCESSES * SMTP_LANES, doubled
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.channel, func.count(Delivery.id))
            .where(Delivery.recovered.is_not(None))
            .group_by(Delivery.channel)
        ).all()
    flagged = {channel: count for channel, count in rows}
    for channel, copies in doubled.items():
        assert copies <= flagged.get(channel, 0), (doubled, flagged)
    # An email sent twice carries one Message-ID, so mail clients show it once
    ids: dict[str, set[str]] = {}
    for message in smtp.messages:
        ids.setdefault(message.rcpt_tos[0], set()).add(message.message["Message-ID"])
    assert all(len(v) == 1 for v in ids.values())
    final = alerts.alert_status(rt, alert.id).states
    assert all(set(states) == {"sent"} for states in final.values()), final
    assert twilio.violations == []


def test_in_doubt_email_is_held_when_the_operator_says_so(stack) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    smtp, log = stack["smtp"], stack["log"]
    env = stack["env"] | RECOVERY_SETTINGS | {"BROADCAST_IN_DOUBT_EMAIL": "hold"}
    rt = runtime(env)
    add_people(rt.engine, [Person(channels=("email",)) for _ in range(60)])
    smtp.data_delay = 0.1
    alert, backend = send(rt, ("email",))
    process = start_workers(env, log, processes=1, threads=4)
    wait_until(lambda: len(smtp.messages) >= 10, 60, "sending to be under way", log)
    # When the worker is killed mid-send and the sweep settles what it held
    stop_workers(process, signal.SIGKILL)
    time.sleep(3.5)  # the lapse (3 s) passes
    first = recovery.sweep(rt, backend.dispatcher)
    time.sleep(3.5)  # the provider window after the claims passes
    second = recovery.sweep(rt, backend.dispatcher)
    # Then the email in flight is held for an operator, with a reason, not sent again
    states = alerts.alert_status(rt, alert.id).states["email"]
    assert 1 <= states.get("in-doubt", 0) <= SMTP_LANES, states
    assert first.in_doubt + second.in_doubt == states["in-doubt"]
    assert first.sent_again + second.sent_again == 0
    with rt.engine.connect() as conn:
        reasons = set(
            conn.execute(select(Delivery.error_text).where(Delivery.state == "in-doubt")).scalars()
        )
    assert all("BROADCAST_IN_DOUBT_EMAIL=hold" in r for r in reasons), reasons
    # And an operator who checked sends them again on purpose; then everyone has it
    from broadcast.ops import failures

    requeued = failures.requeue_failures(
        rt, backend.dispatcher, operator="e2e", include_in_doubt=True
    )
    assert requeued.deliveries == states["in-doubt"]
    with start_and_stop(env, log):
        wait_until(lambda: alerts.alert_status(rt, alert.id).done, 60, "the alert to finish", log)
    assert {m.rcpt_tos[0] for m in smtp.messages} == {f"person{i}@example.org" for i in range(60)}
    with rt.engine.connect() as conn:
        flagged = conn.execute(
            select(func.count(Delivery.id)).where(Delivery.recovered == REQUEUED_IN_DOUBT)
        ).scalar()
    assert flagged == states["in-doubt"]


@contextmanager
def start_and_stop(env: dict[str, str], log: Path) -> Iterator[None]:
    process = start_workers(env, log, processes=1, threads=4)
    try:
        yield
    finally:
        stop_workers(process)


def test_provider_crash_mid_request_settles_every_doubt(stack) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    twilio, smtp, log = stack["twilio"], stack["smtp"], stack["log"]
    env = stack["env"] | RECOVERY_SETTINGS
    rt = runtime(env)
    add_people(rt.engine, [Person(channels=("sms", "email")) for _ in range(40)])
    # Given Twilio drops some requests before creating anything and loses the answer to others
    # (created, but the worker cannot know), and the mail server hangs up mid-send
    for i in range(0, 10):
        twilio.fail("drop" if i % 2 else "lost-response", to=f"+447700{900000 + i:06d}", count=1)
    smtp.data_delay = 0.2
    alert, _ = send(rt, ("sms", "email"))
    with sweeper(env, log), start_and_stop(env, log):
        wait_until(lambda: len(smtp.messages) >= 5, 60, "email to be under way", log)
        smtp.hang_up_all()
        wait_until(lambda: alerts.alert_status(rt, alert.id).done, 90, "the alert to finish", log)
    # Then every in-doubt send was settled automatically, and nobody was missed
    final = alerts.alert_status(rt, alert.id).states
    assert final == {"sms": {"sent": 40}, "email": {"sent": 40}}, final
    sms = Counter(r.param("To") for r in twilio.requests if r.resource == "Messages" and r.sid)
    assert len(sms) == 40 and max(sms.values()) == 1  # found, not sent twice
    assert {m.rcpt_tos[0] for m in smtp.messages} == {f"person{i}@example.org" for i in range(40)}
    with rt.engine.connect() as conn:
        how = Counter(
            conn.execute(
                select(Delivery.recovered).where(Delivery.recovered.is_not(None))
            ).scalars()
        )
    assert how[recovery.FOUND] == 5 and how[recovery.RESENT_UNKNOWN] == 5, how
    assert 1 <= how[recovery.RESENT_SAME_ID] <= SMTP_LANES, how  # the hang-up hit sends
