"""Scheduler: site midnights across DST, ticks, locked jobs and logged events."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
import types
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bridge import inbox, scheduler
from bridge.models import InboxEntry, InboxStatus
from sync.reader import WordPressUnavailable

PARIS = ZoneInfo("Europe/Paris")
SANTIAGO = ZoneInfo("America/Santiago")
START = dt.datetime(2025, 3, 10, 12, 7, 31, tzinfo=dt.UTC)
FIVE_MINUTES = dt.timedelta(minutes=5)


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


class Clock:
    """A settable clock for the runtime."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class Summary:
    """A stand-in for ReconcileSummary."""

    def as_dict(self) -> dict[str, int]:
        return {"members": 3, "enrolled": 1}


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(make_runtime, clock):
    return make_runtime(clock=clock)


@pytest.fixture
def no_evaluation(monkeypatch):
    # None in sys.modules makes the import raise ModuleNotFoundError.
    monkeypatch.setitem(sys.modules, "bridge.evaluation", None)


@pytest.fixture
def evaluations(monkeypatch) -> list:
    calls: list = []
    module = types.ModuleType("bridge.evaluation")
    module.evaluate_all = lambda runtime: calls.append(runtime.now())
    monkeypatch.setitem(sys.modules, "bridge.evaluation", module)
    return calls


@pytest.fixture
def reconciles(monkeypatch) -> list:
    calls: list = []

    def reconcile_all(runtime, progress=None):
        calls.append(runtime.now())
        return Summary()

    monkeypatch.setattr(scheduler, "reconcile_all", reconcile_all)
    return calls


# Site midnights.


def test_midnight_before_spring_dst():
    midnight = scheduler.next_site_midnight(utc(2025, 3, 29, 12), PARIS)

    assert midnight == utc(2025, 3, 29, 23)
    assert midnight.astimezone(PARIS).hour == 0


def test_midnight_after_spring_dst():
    midnight = scheduler.next_site_midnight(utc(2025, 3, 30, 12), PARIS)

    assert midnight == utc(2025, 3, 30, 22)
    assert midnight.astimezone(PARIS).hour == 0


def test_spring_dst_day_has_23_hours():
    start = scheduler.site_midnight(dt.date(2025, 3, 30), PARIS)
    end = scheduler.site_midnight(dt.date(2025, 3, 31), PARIS)

    assert end - start == dt.timedelta(hours=23)


def test_midnight_across_autumn_dst():
    before = scheduler.next_site_midnight(utc(2025, 10, 25, 12), PARIS)
    after = scheduler.next_site_midnight(utc(2025, 10, 26, 12), PARIS)

    assert before == utc(2025, 10, 25, 22)
    assert after == utc(2025, 10, 26, 23)
    assert after - before == dt.timedelta(hours=25)


def test_midnight_strictly_after():
    midnight = scheduler.next_site_midnight(utc(2025, 3, 29, 23), PARIS)

    assert midnight == utc(2025, 3, 30, 22)


def test_midnight_skipped_by_dst():
    # Chile moved its clocks from 00:00 to 01:00 on 11 September 2022
    # (tz database, as shipped by the tzdata package).
    start = scheduler.site_midnight(dt.date(2022, 9, 11), SANTIAGO)

    assert start == utc(2022, 9, 11, 4)
    assert start.astimezone(SANTIAGO).hour == 1
    assert scheduler.next_site_midnight(utc(2022, 9, 10, 12), SANTIAGO) == start


def test_evaluation_time_adds_delay():
    just_after_midnight = utc(2025, 3, 29, 23, 3)

    first = scheduler.next_evaluation_time(just_after_midnight, PARIS, FIVE_MINUTES)
    second = scheduler.next_evaluation_time(first, PARIS, FIVE_MINUTES)

    assert first == utc(2025, 3, 29, 23, 5)
    assert second == utc(2025, 3, 30, 22, 5)


def test_previous_evaluation_time():
    previous = scheduler.previous_evaluation_time

    assert previous(utc(2025, 3, 30, 12), PARIS, FIVE_MINUTES) == utc(
        2025, 3, 29, 23, 5
    )
    assert previous(utc(2025, 3, 30, 22, 5), PARIS, FIVE_MINUTES) == utc(
        2025, 3, 30, 22, 5
    )
    assert previous(utc(2025, 3, 30, 22, 4), PARIS, FIVE_MINUTES) == utc(
        2025, 3, 29, 23, 5
    )


def test_trigger_follows_dst(runtime, monkeypatch):
    monkeypatch.setattr(runtime, "site_zone", lambda: PARIS)
    trigger = scheduler.SiteMidnightTrigger(runtime)

    fire_times = []
    fire = trigger.get_next_fire_time(None, utc(2025, 3, 28, 12))
    for _ in range(4):
        fire_times.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)

    assert fire_times == [
        utc(2025, 3, 28, 23, 5),
        utc(2025, 3, 29, 23, 5),
        utc(2025, 3, 30, 22, 5),
        utc(2025, 3, 31, 22, 5),
    ]


def test_trigger_keeps_zone_on_error(runtime, monkeypatch, caplog):
    trigger = scheduler.SiteMidnightTrigger(runtime)
    monkeypatch.setattr(runtime, "site_zone", lambda: PARIS)
    trigger.get_next_fire_time(None, utc(2025, 3, 28, 12))

    def unavailable():
        raise WordPressUnavailable("cannot reach the WordPress database")

    monkeypatch.setattr(runtime, "site_zone", unavailable)
    with caplog.at_level(logging.WARNING, logger="bridge.scheduler"):
        fire = trigger.get_next_fire_time(None, utc(2025, 3, 30, 12))

    assert fire == utc(2025, 3, 30, 22, 5)
    assert "could not read the site time zone" in caplog.text
    assert "keeping Europe/Paris" in caplog.text


# Ticks.


def test_interval_tick_truncates():
    assert scheduler.interval_tick(START, 900) == dt.datetime(2025, 3, 10, 12, 0)
    assert scheduler.interval_tick(START, 5) == dt.datetime(2025, 3, 10, 12, 7, 30)
    assert scheduler.interval_tick(START, 3600) == dt.datetime(2025, 3, 10, 12)


def test_interval_tick_on_boundary():
    boundary = utc(2025, 3, 10, 12, 15)

    assert scheduler.interval_tick(boundary, 900) == boundary.replace(tzinfo=None)


# Jobs and their locks.


def test_reconcile_once_per_tick(make_runtime, tmp_path, clock, reconciles, caplog):
    url = f"sqlite:///{tmp_path}/shared.sqlite3"
    first = make_runtime(state_url=url, clock=clock)
    second = make_runtime(state_url=url, clock=clock)

    with caplog.at_level(logging.INFO, logger="bridge.scheduler"):
        scheduler.run_reconcile(first)
        scheduler.run_reconcile(second)
    clock.advance(minutes=15)
    scheduler.run_reconcile(second)

    assert len(reconciles) == 2
    assert "full reconcile started for tick 2025-03-10 12:00:00" in caplog.text
    assert "full reconcile finished in" in caplog.text
    assert "members=3, enrolled=1" in caplog.text


def test_reconcile_error_lets_tick_retry(runtime, monkeypatch):
    calls = []

    def failing(runtime, progress=None):
        calls.append(1)
        raise WordPressUnavailable("down")

    monkeypatch.setattr(scheduler, "reconcile_all", failing)

    with pytest.raises(WordPressUnavailable):
        scheduler.run_reconcile(runtime)
    with pytest.raises(WordPressUnavailable):
        scheduler.run_reconcile(runtime)

    assert len(calls) == 2


def add_entry(runtime, member_id: int) -> None:
    body = f'{{"event": "member-added", "data": {{"id": {member_id}}}}}'
    now = runtime.now().replace(tzinfo=None)
    row = {
        "received_at": now,
        "event": "member-added",
        "body": body,
        "body_sha256": inbox.body_digest(body.encode()),
        "wp_user_id": member_id,
        "status": InboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
    }
    with runtime.db.engine.begin() as connection:
        connection.execute(sa.insert(InboxEntry), row)


def inbox_statuses(runtime) -> list[InboxStatus]:
    with runtime.db.session() as session:
        query = sa.select(InboxEntry.status).order_by(InboxEntry.id)
        return list(session.scalars(query))


def test_inbox_job_drains_batches(runtime, monkeypatch, caplog):
    reconciled = []
    monkeypatch.setattr(
        inbox, "reconcile_member", lambda _runtime, member: reconciled.append(member)
    )
    for member in range(1, 251):
        add_entry(runtime, member)

    with caplog.at_level(logging.INFO, logger="bridge.scheduler"):
        scheduler.run_inbox(runtime)

    assert sorted(reconciled) == list(range(1, 251))
    assert inbox_statuses(runtime) == [InboxStatus.DONE] * 250
    assert "inbox processing finished in" in caplog.text
    assert "claimed=250, done=250" in caplog.text


def test_inbox_job_quiet_when_idle(runtime, caplog):
    with caplog.at_level(logging.DEBUG, logger="bridge.scheduler"):
        scheduler.run_inbox(runtime)

    assert "inbox processing found nothing due" in caplog.text
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_inbox_drain_stops_when_wordpress_down(runtime, monkeypatch):
    calls = []

    def unavailable(_runtime, member):
        calls.append(member)
        raise WordPressUnavailable("down")

    monkeypatch.setattr(inbox, "reconcile_member", unavailable)
    for member in range(1, 151):
        add_entry(runtime, member)

    totals = scheduler.drain_inbox(runtime)

    assert calls == [1]
    assert totals.claimed == 100
    assert totals.retried == 100
    assert totals.wordpress_unavailable
    assert inbox_statuses(runtime) == [InboxStatus.PENDING] * 150


def test_evaluation_runs_once_per_night(runtime, clock, evaluations, monkeypatch):
    monkeypatch.setattr(runtime, "site_zone", lambda: PARIS)
    evaluate = scheduler.load_evaluation()
    clock.now = utc(2025, 3, 29, 23, 5, 1)

    scheduler.run_evaluation(runtime, evaluate)
    clock.advance(hours=1)
    scheduler.run_evaluation(runtime, evaluate)
    clock.now = utc(2025, 3, 30, 22, 5)
    scheduler.run_evaluation(runtime, evaluate)

    assert evaluations == [utc(2025, 3, 29, 23, 5, 1), utc(2025, 3, 30, 22, 5)]


def test_missing_evaluation_not_scheduled(runtime, no_evaluation, caplog):
    with caplog.at_level(logging.DEBUG, logger="bridge.scheduler"):
        built = scheduler.build_scheduler(runtime)

    assert {job.id for job in built.get_jobs()} == {"reconcile", "inbox"}
    assert "nightly evaluation not scheduled" in caplog.text


def test_present_evaluation_scheduled(runtime, evaluations):
    built = scheduler.build_scheduler(runtime)

    ids = {job.id for job in built.get_jobs()}
    assert ids == {"reconcile", "inbox", "evaluation"}


def test_broken_evaluation_import_raises(runtime, monkeypatch):
    def broken(name):
        raise ModuleNotFoundError("No module named 'numpy'", name="numpy")

    monkeypatch.setattr(scheduler.importlib, "import_module", broken)

    with pytest.raises(ModuleNotFoundError):
        scheduler.build_scheduler(runtime)


# The running scheduler.


def test_jobs_aligned_to_ticks(make_runtime, no_evaluation):
    runtime = make_runtime(scheduler={"reconcile_interval_minutes": 15})
    built = scheduler.build_scheduler(runtime)
    built.start(paused=True)
    try:
        jobs = {job.id: job for job in built.get_jobs()}
    finally:
        built.shutdown(wait=False)

    reconcile_at = jobs["reconcile"].next_run_time
    assert reconcile_at.minute % 15 == 0
    assert reconcile_at.second == 0
    assert jobs["inbox"].next_run_time.second % 5 == 0
    assert jobs["reconcile"].coalesce
    assert jobs["reconcile"].max_instances == 1
    assert jobs["reconcile"].misfire_grace_time == 300


def test_misfire_logged(make_runtime, no_evaluation, reconciles, caplog):
    runtime = make_runtime(scheduler={"misfire_grace_seconds": 1})
    built = scheduler.build_scheduler(runtime)
    built.start(paused=True)
    late = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    built.modify_job("reconcile", next_run_time=late)

    with caplog.at_level(logging.WARNING, logger="bridge.scheduler"):
        built.resume()
        logged = wait_for(lambda: "job reconcile missed its run" in caplog.text)
        built.shutdown()

    assert logged
    assert reconciles == []


def test_job_error_logged(runtime, no_evaluation, monkeypatch, caplog):
    def broken(runtime, limit=100):
        raise RuntimeError("inbox table is corrupt")

    monkeypatch.setattr(scheduler, "process_due", broken)
    built = scheduler.build_scheduler(runtime)
    built.start(paused=True)
    built.modify_job("inbox", next_run_time=dt.datetime.now(dt.UTC))

    with caplog.at_level(logging.ERROR, logger="bridge.scheduler"):
        built.resume()
        logged = wait_for(lambda: "job inbox failed" in caplog.text)
        built.shutdown()

    assert logged
    assert "RuntimeError: inbox table is corrupt" in caplog.text


def test_start_scheduler_runs_inbox(make_runtime, no_evaluation, monkeypatch):
    runtime = make_runtime(scheduler={"inbox_interval_seconds": 1})
    reconciled = []
    monkeypatch.setattr(
        inbox, "reconcile_member", lambda _runtime, member: reconciled.append(member)
    )
    add_entry(runtime, 42)

    started = scheduler.start_scheduler(runtime)
    try:
        processed = wait_for(lambda: reconciled == [42], timeout=5)
    finally:
        started.shutdown()

    assert processed
    assert not started.running
