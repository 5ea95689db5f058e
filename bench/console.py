"""Time the admin console's client progress page on MariaDB.

Builds a WordPress database with an administrator, coaches and 100,000 members
(the console reads client names from it) and a state database with three
programs, ten cohorts, 100,000 enrollments and activity entries. Then it
requests ``GET /pages/admin/activity?program=...`` through the Flask test
client, signed as the plugin signs it, for the largest program: a warm-up, then
N timed requests. The same is done, with fewer requests, for the page sorted by
name, a search by name and the activity feed.

Usage::

    .venv/bin/python bench/console.py                  # build, time, drop
    .venv/bin/python bench/console.py --enrollments 10000 --requests 50

The server comes from COACHBRIDGE_BENCH_MYSQL_URL (default
mysql+pymysql://root@127.0.0.1:3306). The script creates two databases named
cb_bench_console_* and drops them when it ends. Results are printed as
``name: value unit`` lines; the build summaries go to standard error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
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

from bridge.activity import activity_row  # noqa: E402
from bridge.app import create_app  # noqa: E402
from bridge.config import config_from_mapping  # noqa: E402
from bridge.db import Database, create_wordpress_engine  # noqa: E402
from bridge.migrate import upgrade  # noqa: E402
from bridge.models import (  # noqa: E402
    Activity,
    ActivityType,
    Coach,
    Cohort,
    CohortKind,
    Enrollment,
    EnrollmentStatus,
    Program,
)
from bridge.runtime import Runtime  # noqa: E402
from bridge.signing import sign_request  # noqa: E402
from bridge.wpsite import NewUser, WordPressSite  # noqa: E402
from sync.reader import WordPressReader  # noqa: E402

DEFAULT_SERVER = "mysql+pymysql://root@127.0.0.1:3306"
SECRET = "bench-console-secret-0123456789"
SEED = 20260302
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
COACHES = 5
# Share of the enrollments in each program; the first is the one timed.
PROGRAM_SHARES = {"strength": 0.5, "mobility": 0.3, "sleep": 0.2}
COHORTS_PER_PROGRAM = {"strength": 4, "mobility": 3, "sleep": 3}
INACTIVE_SHARE = 0.1
ACTIVITY_PER_ENROLLMENT = 2
INSERT_CHUNK = 5000
WARM_UP_REQUESTS = 20
FIRST_NAMES = ("Zoë", "Ana", "Björn", "Chloé", "Dan", "Émile", "Farah", "Gustav")


def main() -> None:
    """Parse the options, build both databases, time the pages, drop them."""
    options = _parse_options()
    server = os.environ.get("COACHBRIDGE_BENCH_MYSQL_URL", DEFAULT_SERVER).rstrip("/")
    _metric("load_average_at_start", os.getloadavg()[0], "")

    wordpress_name = _unique("wordpress")
    state_name = _unique("state")
    try:
        wordpress_url = _create_database(server, wordpress_name)
        state_url = _create_database(server, state_name)
        _run(wordpress_url, state_url, options)
    finally:
        _drop_database(server, state_name)
        _drop_database(server, wordpress_name)
    _metric("load_average_at_end", os.getloadavg()[0], "")


def _parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--enrollments",
        type=int,
        default=100_000,
        help="enrollments to create, one member each (default 100000)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=200,
        help="timed requests of the progress page after the warm-up (default 200)",
    )
    parser.add_argument(
        "--other-requests",
        type=int,
        default=50,
        help="timed requests of each other page (default 50)",
    )
    return parser.parse_args()


def _run(wordpress_url: str, state_url: str, options: argparse.Namespace) -> None:
    started = time.monotonic()
    users = _fill_wordpress(wordpress_url, options.enrollments)
    _metric("build_wordpress", time.monotonic() - started, "s")

    runtime = _runtime(wordpress_url, state_url)
    try:
        started = time.monotonic()
        programs = _fill_state(runtime, users, options.enrollments)
        _metric("build_state", time.monotonic() - started, "s")
        _time_pages(runtime, users["admin"], programs["strength"], options)
    finally:
        runtime.close()


def _fill_wordpress(url: str, members: int) -> dict[str, object]:
    engine = sa.create_engine(url)
    try:
        site = WordPressSite(engine)
        site.create_schema()
        admin = site.add_user(
            "admin", "admin@example.org", "Ada Admin", roles=("administrator",)
        )
        coaches = site.add_users(
            NewUser(f"coach{index}", f"coach{index}@example.org", f"Coach {index}")
            for index in range(COACHES)
        )
        clients = site.add_users(
            NewUser(
                f"member{index}",
                f"member{index}@example.org",
                f"{FIRST_NAMES[index % len(FIRST_NAMES)]} Member {index}",
            )
            for index in range(members)
        )
    finally:
        engine.dispose()
    _metric("members", members, "")
    return {"admin": admin, "coaches": coaches, "clients": clients}


def _runtime(wordpress_url: str, state_url: str) -> Runtime:
    config = config_from_mapping(
        {
            "state": {"database_url": state_url},
            "wordpress": {"database_url": wordpress_url},
            "api": {"secrets": [SECRET]},
        }
    )
    db = Database.from_url(state_url)
    upgrade(db.engine)
    reader = WordPressReader(create_wordpress_engine(wordpress_url), "wp_")
    return Runtime(
        config=config, db=db, wordpress_reader=reader, rng=random.Random(SEED)
    )


def _fill_state(runtime: Runtime, users: dict, count: int) -> dict[str, int]:
    """Add programs, cohorts and coaches, then enrollments and activity in bulk."""
    with runtime.db.session() as session:
        coaches = [Coach(wp_user_id=user_id) for user_id in users["coaches"]]
        session.add_all(coaches)
        programs = {
            slug: Program(slug=slug, title=slug.title()) for slug in PROGRAM_SHARES
        }
        session.add_all(programs.values())
        session.flush()
        cohorts = {
            slug: [
                Cohort(
                    program_id=program.id,
                    name=f"Cohort {number}",
                    kind=CohortKind.ROLLING,
                    coach_id=coaches[(number + len(slug)) % COACHES].id,
                )
                for number in range(COHORTS_PER_PROGRAM[slug])
            ]
            for slug, program in programs.items()
        }
        session.add_all(cohort for group in cohorts.values() for cohort in group)
        session.flush()
        program_ids = {slug: program.id for slug, program in programs.items()}
        cohort_ids = {slug: [c.id for c in group] for slug, group in cohorts.items()}

    rows = list(_enrollment_rows(users["clients"][:count], program_ids, cohort_ids))
    _insert(runtime, Enrollment.__table__, rows)
    _insert(runtime, Activity.__table__, _activity_rows(runtime))
    _metric("enrollments", len(rows), "")
    return program_ids


def _enrollment_rows(
    clients: list[int], program_ids: dict[str, int], cohort_ids: dict[str, list[int]]
) -> Iterator[dict[str, object]]:
    rng = random.Random(SEED)
    slugs = list(PROGRAM_SHARES)
    weights = list(PROGRAM_SHARES.values())
    for wp_user_id in clients:
        slug = rng.choices(slugs, weights)[0]
        active = rng.random() >= INACTIVE_SHARE
        touched = rng.random() < 0.9
        yield {
            "wp_user_id": wp_user_id,
            "program_id": program_ids[slug],
            "cohort_id": rng.choice(cohort_ids[slug]),
            "status": EnrollmentStatus.ACTIVE if active else EnrollmentStatus.INACTIVE,
            "start_date": (NOW - dt.timedelta(days=rng.randrange(1, 120))).date(),
            "enrolled_by_hand": False,
            "created_at": NOW,
            "updated_at": NOW,
            "off_track": rng.random() < 0.15,
            "progress_percent": rng.randrange(0, 101),
            "milestones_done": 0,
            "milestones_total": 0,
            "habit_dates_done": 0,
            "habit_dates_due": 0,
            "last_activity_at": (
                NOW - dt.timedelta(minutes=rng.randrange(1, 60 * 24 * 60))
                if touched
                else None
            ),
        }


def _activity_rows(runtime: Runtime) -> Iterator[dict[str, object]]:
    rng = random.Random(SEED + 1)
    kinds = [ActivityType.HABIT_TICKED, ActivityType.MILESTONE_COMPLETED]
    select = sa.select(
        Enrollment.id,
        Enrollment.wp_user_id,
        Enrollment.program_id,
        Cohort.id,
        Cohort.coach_id,
    ).join(Cohort, Enrollment.cohort_id == Cohort.id)
    with runtime.db.session() as session:
        enrollments = session.execute(select).all()
    for enrollment_id, wp_user_id, program_id, cohort_id, coach_id in enrollments:
        for _ in range(ACTIVITY_PER_ENROLLMENT):
            yield activity_row(
                rng.choice(kinds),
                wp_user_id=wp_user_id,
                program_id=program_id,
                cohort_id=cohort_id,
                coach_id=coach_id,
                enrollment_id=enrollment_id,
                summary="Ticked a habit",
                occurred_at=NOW - dt.timedelta(minutes=rng.randrange(1, 60 * 24 * 60)),
            )


def _insert(runtime: Runtime, table: sa.Table, rows) -> None:
    chunk: list[dict[str, object]] = []
    with runtime.db.engine.begin() as connection:
        for row in rows:
            chunk.append(row)
            if len(chunk) == INSERT_CHUNK:
                connection.execute(table.insert(), chunk)
                chunk = []
        if chunk:
            connection.execute(table.insert(), chunk)


def _time_pages(
    runtime: Runtime, admin: int, program_id: int, options: argparse.Namespace
) -> None:
    client = create_app(runtime=runtime).test_client()

    def page(query: dict[str, str]) -> Callable[[], None]:
        path = "/pages/admin/activity"

        def request() -> None:
            headers = sign_request(SECRET, "GET", path, query, b"", admin)
            response = client.get(path, query_string=query, headers=headers)
            if response.status_code != 200:
                raise SystemExit(
                    f"GET {path} {query} returned HTTP {response.status_code}"
                )

        return request

    program = str(program_id)
    _measure("console_progress", page({"program": program}), options.requests)
    others = {
        "console_progress_by_name": {"program": program, "sort": "name"},
        "console_progress_search": {"program": program, "q": "Chloé Member 12"},
        "console_feed": {"view": "feed", "program": program},
    }
    for name, query in others.items():
        _measure(name, page(query), options.other_requests)


def _measure(name: str, request: Callable[[], None], count: int) -> None:
    for _ in range(WARM_UP_REQUESTS):
        request()
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        request()
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    _metric(f"{name}_p50", statistics.median(durations), "ms")
    _metric(f"{name}_p95", durations[math.ceil(0.95 * count) - 1], "ms")


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
    return f"cb_bench_console_{label}_{uuid.uuid4().hex[:8]}"


def _metric(name: str, value: float, unit: str) -> None:
    shown = f"{value:.2f}" if isinstance(value, float) else str(value)
    print(f"{name}: {shown} {unit}".rstrip(), flush=True)


if __name__ == "__main__":
    main()
