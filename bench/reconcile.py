"""Time the full reconcile of 100,000 members on MariaDB.

Builds a WordPress database with members, memberships and MemberPress
transactions of mixed kinds (lifetime, expiring, trials, refunded, failed,
expired), a state database with two programs, then times ``reconcile_all``
twice: the first run creates the enrollments, the second finds nothing to do.

Usage::

    .venv/bin/python bench/reconcile.py            # build, run, drop
    .venv/bin/python bench/reconcile.py --reuse    # keep the WordPress database

The server comes from COACHBRIDGE_BENCH_MYSQL_URL (default
mysql+pymysql://root@127.0.0.1:3306). The script creates its own databases,
named cb_bench_*, and drops them at the end, except the WordPress one with
--reuse. Results are printed as ``name: value unit`` lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.config import config_from_mapping  # noqa: E402
from bridge.db import Database, create_wordpress_engine  # noqa: E402
from bridge.migrate import upgrade  # noqa: E402
from bridge.models import (  # noqa: E402
    Coach,
    Cohort,
    CohortKind,
    Enrollment,
    Program,
    ProgramMembership,
)
from bridge.reconcile import reconcile_all  # noqa: E402
from bridge.runtime import Runtime  # noqa: E402
from bridge.wpsite import ZERO_DATE, NewTransaction, NewUser, WordPressSite  # noqa: E402
from sync.reader import WordPressReader  # noqa: E402

DEFAULT_SERVER = "mysql+pymysql://root@127.0.0.1:3306"
REUSED_WORDPRESS = "cb_bench_wordpress"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SEED = 20250310
MEMBERSHIP_TITLES = ("Monthly", "Yearly", "Lifetime")


def main() -> None:
    """Parse the options, build the databases and print the timings."""
    options = _parse_options()
    server = os.environ.get("COACHBRIDGE_BENCH_MYSQL_URL", DEFAULT_SERVER).rstrip("/")
    _metric("load_average_at_start", os.getloadavg()[0], "")

    wordpress_name = REUSED_WORDPRESS if options.reuse else _unique("wordpress")
    state_name = _unique("state")
    try:
        wordpress_url = _prepare_wordpress(server, wordpress_name, options)
        state_url = _create_database(server, state_name)
        _run(wordpress_url, state_url, options.members)
    finally:
        _drop_database(server, state_name)
        if not options.reuse:
            _drop_database(server, wordpress_name)
    _metric("load_average_at_end", os.getloadavg()[0], "")


def _parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--members", type=int, default=100_000, help="members to create (users)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"keep the WordPress database {REUSED_WORDPRESS} and reuse it when it "
        "already has the requested number of members",
    )
    return parser.parse_args()


def _prepare_wordpress(server: str, name: str, options: argparse.Namespace) -> str:
    url = f"{server}/{name}?charset=utf8mb4"
    if options.reuse and _has_members(server, name, options.members):
        print(f"reusing WordPress database {name}", file=sys.stderr)
        return url

    _drop_database(server, name)
    _create_database(server, name)
    started = time.monotonic()
    engine = sa.create_engine(url)
    try:
        _fill_wordpress(WordPressSite(engine), options.members)
    finally:
        engine.dispose()
    _metric("build_wordpress", time.monotonic() - started, "s")
    return url


def _fill_wordpress(site: WordPressSite, members: int) -> None:
    site.create_schema()
    site.add_users(
        NewUser(f"coach{index}", f"coach{index}@example.org", f"Coach {index}")
        for index in range(3)
    )
    memberships = [site.add_membership(title) for title in MEMBERSHIP_TITLES]
    ids = site.add_users(
        NewUser(f"member{index}", f"member{index}@example.org", f"Member {index} ✓")
        for index in range(members)
    )
    count = len(site.add_transactions(_transactions(ids, memberships)))
    _metric("members", members, "")
    _metric("transactions", count, "")


def _transactions(user_ids: range, memberships: list[int]) -> Iterator[NewTransaction]:
    """Yield three transactions per member: a past one, a current one, a third.

    About 85% of members end up with access. The mix covers lifetime (zero
    date and NULL), expiring, trial, refunded, failed, pending and expired rows.
    """
    rng = random.Random(SEED)
    monthly, yearly, lifetime = memberships
    past = (NOW - dt.timedelta(days=40)).replace(tzinfo=None)
    future = (NOW + dt.timedelta(days=20)).replace(tzinfo=None)
    for user_id in user_ids:
        yield NewTransaction(user_id, monthly, expires_at=past)
        yield _current(rng, user_id, monthly, yearly, lifetime, future)
        yield _third(rng, user_id, yearly, lifetime, future)


def _current(rng, user_id, monthly, yearly, lifetime, future) -> NewTransaction:
    roll = rng.random()
    if roll < 0.45:
        return NewTransaction(user_id, monthly, expires_at=future)
    if roll < 0.65:
        return NewTransaction(user_id, yearly, expires_at=future)
    if roll < 0.75:
        return NewTransaction(user_id, lifetime, expires_at=ZERO_DATE)
    if roll < 0.80:
        return NewTransaction(user_id, lifetime, expires_at=None)
    if roll < 0.85:
        return NewTransaction(
            user_id,
            monthly,
            status="confirmed",
            txn_type="subscription_confirmation",
            expires_at=future,
        )
    return NewTransaction(user_id, monthly, status="refunded", expires_at=future)


def _third(rng, user_id, yearly, lifetime, future) -> NewTransaction:
    status = rng.choice(["failed", "pending", "refunded", "complete"])
    membership = yearly if rng.random() < 0.5 else lifetime
    expires = future if status != "complete" else (NOW - dt.timedelta(days=1))
    return NewTransaction(
        user_id, membership, status=status, expires_at=expires.replace(tzinfo=None)
    )


def _run(wordpress_url: str, state_url: str, members: int) -> None:
    runtime = _runtime(wordpress_url, state_url)
    try:
        _add_programs(runtime)
        first = _timed_reconcile(runtime, "reconcile_first_run")
        _metric("enrolled_first_run", first.enrolled, "")
        second = _timed_reconcile(runtime, "reconcile_second_run")
        _metric("changes_second_run", second.enrolled + second.deactivated, "")
        _metric("enrollments", _count(runtime, Enrollment), "")
        if first.errors or second.errors:
            raise SystemExit(f"reconcile reported errors: {first} {second}")
    finally:
        runtime.close()


def _runtime(wordpress_url: str, state_url: str) -> Runtime:
    config = config_from_mapping(
        {
            "state": {"database_url": state_url},
            "wordpress": {"database_url": wordpress_url},
        }
    )
    db = Database.from_url(state_url)
    upgrade(db.engine)
    reader = WordPressReader(create_wordpress_engine(wordpress_url), "wp_")
    return Runtime(
        config=config, db=db, wordpress_reader=reader, rng=random.Random(SEED)
    )


def _add_programs(runtime: Runtime) -> None:
    """Add two programs: monthly+yearly grant one, yearly+lifetime the other."""
    ids = {item.title: item.id for item in runtime.wordpress.memberships()}
    monthly, yearly, lifetime = (ids[title] for title in MEMBERSHIP_TITLES)
    with runtime.db.session() as session:
        coaches = [Coach(wp_user_id=user_id) for user_id in (1, 2, 3)]
        session.add_all(coaches)
        session.flush()
        strength = _program("strength", [monthly, yearly])
        mobility = _program("mobility", [yearly, lifetime])
        session.add_all([strength, mobility])
        session.flush()
        session.add_all(
            [
                _cohort(strength, "Rolling A", coaches[0]),
                _cohort(strength, "Rolling B", coaches[1], capacity=30_000),
                _cohort(strength, "Rolling C", coaches[2]),
                _cohort(mobility, "Rolling", coaches[0]),
                _cohort(mobility, "Spring", coaches[1], start=dt.date(2025, 4, 1)),
            ]
        )


def _program(slug: str, memberships: list[int]) -> Program:
    program = Program(slug=slug, title=slug.title())
    program.memberships = [ProgramMembership(membership_id=m) for m in memberships]
    return program


def _cohort(program, name, coach, capacity=None, start=None) -> Cohort:
    return Cohort(
        program_id=program.id,
        name=name,
        kind=CohortKind.FIXED if start else CohortKind.ROLLING,
        start_date=start,
        coach_id=coach.id,
        capacity=capacity,
    )


def _timed_reconcile(runtime: Runtime, name: str):
    started = time.monotonic()
    summary = reconcile_all(runtime)
    _metric(name, time.monotonic() - started, "s")
    print(f"  {summary.as_dict()}", file=sys.stderr)
    return summary


def _count(runtime: Runtime, model) -> int:
    with runtime.db.session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def _has_members(server: str, name: str, members: int) -> bool:
    engine = sa.create_engine(server)
    try:
        with engine.connect() as connection:
            query = sa.text(
                f"SELECT COUNT(DISTINCT user_id) FROM `{name}`.wp_mepr_transactions"
            )
            return connection.execute(query).scalar() == members
    except sa.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


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
    return f"cb_bench_{label}_{uuid.uuid4().hex[:8]}"


def _metric(name: str, value: float, unit: str) -> None:
    shown = f"{value:.2f}" if isinstance(value, float) else str(value)
    print(f"{name}: {shown} {unit}".rstrip())


if __name__ == "__main__":
    main()
