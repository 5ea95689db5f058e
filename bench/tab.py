"""Time the Coaching tab and the enrollment list of one client on MariaDB.

Builds a WordPress database and a state database with 10,000 enrolled clients
in five programs. Each client has ticked their first milestone and about 80% of
the past days of a daily habit. One more client is enrolled in all five
programs and has a conversation of 20 messages. Then sends signed requests
through the Flask test client, as the plugin would, for that client:
``GET /pages/client`` (the tab's default view) and ``GET /api/v1/me/enrollments``.
Each is sent a few times to warm up and then timed N times.

Usage::

    .venv/bin/python bench/tab.py                  # 300 requests each
    .venv/bin/python bench/tab.py --requests 100   # a quicker run

The server comes from COACHBRIDGE_BENCH_MYSQL_URL (default
mysql+pymysql://root@127.0.0.1:3306). The script creates two databases named
cb_bench_tab_* and drops them at the end. Results are printed as
``name: value unit`` lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.app import create_app  # noqa: E402
from bridge.config import config_from_mapping  # noqa: E402
from bridge.migrate import upgrade  # noqa: E402
from bridge.models import (  # noqa: E402
    Coach,
    Cohort,
    CohortKind,
    Conversation,
    DueUnit,
    Enrollment,
    Habit,
    HabitTick,
    Message,
    Milestone,
    MilestoneTick,
    Program,
    ScheduleKind,
)
from bridge.runtime import Runtime  # noqa: E402
from bridge.signing import sign_request  # noqa: E402
from bridge.wpsite import NewUser, WordPressSite  # noqa: E402

DEFAULT_SERVER = "mysql+pymysql://root@127.0.0.1:3306"
SECRET = "bench-tab-secret-0123456789"
SEED = 20261204
PROGRAMS = 5
COHORTS_PER_PROGRAM = 3
WARM_UP_REQUESTS = 20
TARGET_P95_MS = 50
TODAY = dt.datetime.now(dt.UTC).date()


def main() -> None:
    """Parse the options, build the databases, time both requests, drop them."""
    options = _parse_options()
    server = os.environ.get("COACHBRIDGE_BENCH_MYSQL_URL", DEFAULT_SERVER).rstrip("/")
    _metric("load_average_at_start", os.getloadavg()[0], "")

    names = {label: _unique(label) for label in ("wordpress", "state")}
    runtime = None
    try:
        urls = {label: _create_database(server, name) for label, name in names.items()}
        runtime = _runtime(urls["wordpress"], urls["state"])
        client_id = _build(runtime, urls["wordpress"], options.clients)
        _time_requests(runtime, client_id, options.requests)
    finally:
        if runtime is not None:
            runtime.close()
        for name in names.values():
            _drop_database(server, name)
    _metric("load_average_at_end", os.getloadavg()[0], "")


def _parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=300, help="timed requests per endpoint"
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=10_000,
        help="enrolled clients besides the one timed",
    )
    return parser.parse_args()


def _runtime(wordpress_url: str, state_url: str) -> Runtime:
    config = config_from_mapping(
        {
            "state": {"database_url": state_url},
            "wordpress": {"database_url": wordpress_url},
            "api": {"secrets": [SECRET]},
            "logging": {"level": "WARNING"},
        }
    )
    runtime = Runtime.from_config(config)
    upgrade(runtime.db.engine)
    return runtime


def _build(runtime: Runtime, wordpress_url: str, clients: int) -> int:
    """Fill both databases; return the WordPress id of the client with five programs."""
    started = time.monotonic()
    user_ids = _fill_wordpress(wordpress_url, clients)
    coaches, client_id, others = user_ids[:3], user_ids[3], user_ids[4:]
    rng = random.Random(SEED)

    with runtime.db.session() as session:
        programs = _add_programs(session, coaches)
    with runtime.db.session() as session:
        enrollments = _enroll(session, programs, client_id, others, rng)
    _add_ticks(runtime, enrollments, rng)
    with runtime.db.session() as session:
        _add_conversation(session, client_id, coaches[0])

    _metric("build_databases", time.monotonic() - started, "s")
    _metric("enrollments", len(enrollments), "")
    return client_id


def _fill_wordpress(url: str, clients: int) -> list[int]:
    engine = sa.create_engine(url)
    try:
        site = WordPressSite(engine)
        site.create_schema()
        site.set_option("timezone_string", "Europe/Paris")
        return site.add_users(_users(clients))
    finally:
        engine.dispose()


def _users(clients: int) -> Iterator[NewUser]:
    for index in range(3):
        yield NewUser(f"coach{index}", f"coach{index}@example.org", f"Coach {index}")
    yield NewUser("busy", "busy@example.org", "Busy Client ✓", "Busy", "Client")
    for index in range(clients):
        yield NewUser(f"client{index}", f"client{index}@example.org", f"Client {index}")


def _add_programs(session: sa.orm.Session, coaches: list[int]) -> list[Program]:
    coach_rows = [
        Coach(wp_user_id=user, display_name=f"Coach {index}")
        for index, user in enumerate(coaches)
    ]
    programs = []
    for number in range(PROGRAMS):
        program = Program(slug=f"program-{number}", title=f"Program {number}")
        for position, weeks in enumerate((1, 4, 8)):
            program.milestones.append(
                Milestone(
                    title=f"Milestone {position}",
                    due_amount=weeks,
                    due_unit=DueUnit.WEEKS,
                    position=position,
                )
            )
        program.habits.append(_daily_habit())
        program.habits.append(_weekday_habit())
        for index in range(COHORTS_PER_PROGRAM):
            coach = coach_rows[index % len(coach_rows)]
            session.add(
                Cohort(
                    program=program,
                    name=f"Cohort {number}.{index}",
                    kind=CohortKind.ROLLING,
                    coach=coach,
                    appointments_enabled=index == 0,
                    booking_url="https://calendly.com/coach/30min"
                    if index == 0
                    else None,
                )
            )
        programs.append(program)
    session.add_all(programs)
    session.flush()
    return programs


def _daily_habit() -> Habit:
    return Habit(
        title="Walk",
        schedule=ScheduleKind.DAILY,
        length_amount=12,
        length_unit=DueUnit.WEEKS,
        position=0,
    )


def _weekday_habit() -> Habit:
    return Habit(
        title="Strength session",
        schedule=ScheduleKind.WEEKDAYS,
        weekdays=0b0010101,
        length_amount=12,
        length_unit=DueUnit.WEEKS,
        position=1,
    )


def _enroll(
    session: sa.orm.Session,
    programs: list[Program],
    client_id: int,
    others: list[int],
    rng: random.Random,
) -> list[tuple[int, int, dt.date]]:
    """Enroll the timed client in every program and each other client in one.

    Returns (enrollment id, program id, start date) of every enrollment.
    """
    rows = []
    for program in programs:
        rows.append(_enrollment_row(client_id, program, rng))
    for user in others:
        rows.append(_enrollment_row(user, rng.choice(programs), rng))
    session.execute(sa.insert(Enrollment.__table__), rows)

    query = sa.select(Enrollment.id, Enrollment.program_id, Enrollment.start_date)
    return [tuple(row) for row in session.execute(query)]


def _enrollment_row(user: int, program: Program, rng: random.Random) -> dict:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    return {
        "wp_user_id": user,
        "program_id": program.id,
        "cohort_id": rng.choice(program.cohorts).id,
        "status": "active",
        "start_date": TODAY - dt.timedelta(days=rng.randint(10, 60)),
        "enrolled_by_hand": True,
        "created_at": now,
        "updated_at": now,
        "off_track": False,
        "progress_percent": 0,
        "milestones_done": 0,
        "milestones_total": 3,
        "habit_dates_done": 0,
        "habit_dates_due": 0,
    }


def _add_ticks(
    runtime: Runtime, enrollments: list[tuple[int, int, dt.date]], rng: random.Random
) -> None:
    """Tick most past days of the daily habits and the first milestone."""
    with runtime.db.session() as session:
        habits = dict(
            session.execute(
                sa.select(Habit.program_id, Habit.id).where(Habit.position == 0)
            ).all()
        )
        first_milestones = dict(
            session.execute(
                sa.select(Milestone.program_id, Milestone.id).where(
                    Milestone.position == 0
                )
            ).all()
        )

    ticked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    habit_rows: list[dict] = []
    milestone_rows: list[dict] = []
    for enrollment_id, program_id, start in enrollments:
        milestone_rows.append(
            {
                "enrollment_id": enrollment_id,
                "milestone_id": first_milestones[program_id],
                "ticked_at": ticked_at,
            }
        )
        for offset in range((TODAY - start).days):
            if rng.random() < 0.8:
                habit_rows.append(
                    {
                        "enrollment_id": enrollment_id,
                        "habit_id": habits[program_id],
                        "due_date": start + dt.timedelta(days=offset),
                        "ticked_at": ticked_at,
                    }
                )

    _insert_in_chunks(runtime, MilestoneTick, milestone_rows)
    _insert_in_chunks(runtime, HabitTick, habit_rows)
    _metric("habit_ticks", len(habit_rows), "")


def _insert_in_chunks(runtime: Runtime, model: type, rows: list[dict]) -> None:
    for start in range(0, len(rows), 20_000):
        with runtime.db.session() as session:
            session.execute(sa.insert(model.__table__), rows[start : start + 20_000])


def _add_conversation(session: sa.orm.Session, client_id: int, coach: int) -> None:
    low, high = sorted((client_id, coach))
    conversation = Conversation(user_low_id=low, user_high_id=high)
    session.add(conversation)
    session.flush()
    for number in range(20):
        sender = coach if number % 2 else client_id
        session.add(
            Message(
                conversation_id=conversation.id,
                sender_wp_user_id=sender,
                body=f"Message {number}",
            )
        )
    session.flush()
    conversation.last_message_id = session.scalar(sa.select(sa.func.max(Message.id)))


def _time_requests(runtime: Runtime, client_id: int, count: int) -> None:
    app = create_app(runtime=runtime)
    client = app.test_client()

    def request(path: str) -> Callable[[], None]:
        def send() -> None:
            headers = sign_request(SECRET, "GET", path, "", b"", client_id)
            response = client.get(path, headers=headers)
            if response.status_code != 200:
                raise SystemExit(
                    f"GET {path} returned {response.status_code}: "
                    f"{response.get_data(as_text=True)[:500]}"
                )

        return send

    for name, path in (
        ("tab_page", "/pages/client"),
        ("enrollments_api", "/api/v1/me/enrollments"),
    ):
        timings = _timings(request(path), count)
        _metric(f"{name}_p50", _percentile(timings, 50), "ms")
        _metric(f"{name}_p95", _percentile(timings, 95), "ms")
    _metric("target_p95", float(TARGET_P95_MS), "ms")


def _timings(send: Callable[[], None], count: int) -> list[float]:
    for _ in range(WARM_UP_REQUESTS):
        send()
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        send()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _percentile(values: list[float], percent: int) -> float:
    """Return the percentile by the inclusive method, as numpy's default does."""
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _create_database(server: str, name: str) -> str:
    engine = sa.create_engine(server)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE DATABASE `{name}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        )
    engine.dispose()
    return f"{server}/{name}?charset=utf8mb4"


def _drop_database(server: str, name: str) -> None:
    engine = sa.create_engine(server)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    engine.dispose()


def _unique(label: str) -> str:
    return f"cb_bench_tab_{label}_{uuid.uuid4().hex[:8]}"


def _metric(name: str, value: float, unit: str) -> None:
    shown = f"{value:.2f}" if isinstance(value, float) else str(value)
    print(f"{name}: {shown} {unit}".rstrip())


if __name__ == "__main__":
    main()
