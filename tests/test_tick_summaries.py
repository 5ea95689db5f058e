"""Habit tick summaries: updated by each tick, rebuilt in SQL, both the same."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import tick_summaries
from bridge.errors import InvalidRequest
from bridge.evaluation import evaluate_all
from bridge.migrate import _alembic_config, upgrade
from bridge.models import Enrollment, HabitTick, HabitTickSummary
from bridge.tick_summaries import Totals, rebuild, rebuild_all
from bridge.ticks import tick_habit, untick_habit
from tests.test_ticks import CLIENT, build_coaching, noon_utc
from tests.test_ticks import harness as harness  # noqa: F401 (fixture)

START = dt.date(2025, 3, 3)  # a Monday
TODAY = START + dt.timedelta(days=20)
SUMMARY_COLUMNS = (
    "tick_count",
    "first_due_date",
    "last_due_date",
    "previous_due_date",
    "residues",
)


def summaries(runtime, enrollment_ids=None) -> dict[tuple[int, int], tuple]:
    query = sa.select(HabitTickSummary)
    if enrollment_ids is not None:
        query = query.where(HabitTickSummary.enrollment_id.in_(enrollment_ids))
    with runtime.db.session() as session:
        return {
            (row.enrollment_id, row.habit_id): tuple(
                getattr(row, name) for name in SUMMARY_COLUMNS
            )
            for row in session.scalars(query)
        }


def expected(runtime, enrollment_ids=None) -> dict[tuple[int, int], tuple]:
    """Summaries computed in Python from the tick rows."""
    query = sa.select(HabitTick.enrollment_id, HabitTick.habit_id, HabitTick.due_date)
    if enrollment_ids is not None:
        query = query.where(HabitTick.enrollment_id.in_(enrollment_ids))
    dates: dict[tuple[int, int], list[dt.date]] = {}
    with runtime.db.session() as session:
        for enrollment_id, habit_id, due_date in session.execute(query):
            dates.setdefault((enrollment_id, habit_id), []).append(due_date)
    return {
        key: tuple(getattr(Totals.of(days), name) for name in SUMMARY_COLUMNS)
        for key, days in dates.items()
    }


def insert_ticks(runtime, rows) -> None:
    """Write tick rows without bridge.ticks, as a hand-made SQL change would."""
    with runtime.db.session() as session:
        session.execute(sa.insert(HabitTick), [dict(row) for row in rows])


def tick_row(enrollment_id: int, habit_id: int, due_date: dt.date) -> dict:
    return {
        "enrollment_id": enrollment_id,
        "habit_id": habit_id,
        "due_date": due_date,
        "ticked_at": dt.datetime(2025, 1, 1),
    }


def test_totals_of_dates():
    days = [dt.date(2025, 3, 7), dt.date(2025, 3, 3), dt.date(2025, 3, 5)]
    totals = Totals.of([*days, days[0]])

    assert totals.tick_count == 3
    assert totals.first_due_date == dt.date(2025, 3, 3)
    assert totals.last_due_date == dt.date(2025, 3, 7)
    assert totals.previous_due_date == dt.date(2025, 3, 5)
    bits = {day.toordinal() % 42 for day in days}
    assert totals.residues == sum(1 << bit for bit in bits)
    assert Totals.of([]) is None
    assert Totals.of([days[0]]).previous_due_date is None


_counter = itertools.count(1000)

OPERATIONS = st.lists(
    st.tuples(st.sampled_from([0, 1]), st.integers(0, 20), st.booleans()),
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operations=OPERATIONS)
def test_ticks_match_a_rebuild(harness, operations):
    coaching = build_coaching(harness, slug=f"p{next(_counter)}")
    habits = [
        coaching.add_habit("Walk"),
        coaching.add_habit("Swim", "weekdays", weekdays=(0, 2, 4)),
    ]
    enrollment = coaching.enroll(START, wp_user_id=next(_counter))
    coaching.at(noon_utc(TODAY))

    for habit_index, day, done in operations:
        change = tick_habit if done else untick_habit
        due_date = START + dt.timedelta(days=day)
        try:
            change(coaching.runtime, enrollment, habits[habit_index], due_date, CLIENT)
        except InvalidRequest:
            assert done, "an untick never rejects a date"

    stored = summaries(coaching.runtime, [enrollment])
    assert stored == expected(coaching.runtime, [enrollment])
    with coaching.runtime.db.session() as session:
        rebuild(session.connection(), enrollment, enrollment)
    assert summaries(coaching.runtime, [enrollment]) == stored


def test_rebuild_stays_in_range(harness):
    coaching = build_coaching(harness)
    walk = coaching.add_habit("Walk")
    first, second, third = (coaching.enroll(START, wp_user_id=n) for n in (1, 2, 3))
    rows = [
        tick_row(enrollment, walk, START + dt.timedelta(days=day))
        for enrollment in (first, second, third)
        for day in (0, 2, 3)
    ]
    insert_ticks(coaching.runtime, rows)

    with coaching.runtime.db.session() as session:
        written = rebuild(session.connection(), second, second)

    assert written == 1
    assert list(summaries(coaching.runtime)) == [(second, walk)]
    assert summaries(coaching.runtime) == expected(coaching.runtime, [second])
    assert rebuild_all(coaching.runtime, chunk=2) == 3
    assert summaries(coaching.runtime) == expected(coaching.runtime)


def test_rebuild_all_without_enrollments(harness):
    assert rebuild_all(harness.runtime) == 0


def test_enrollment_delete_cascades(harness):
    coaching = build_coaching(harness)
    walk = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(TODAY))
    tick_habit(coaching.runtime, enrollment, walk, START, CLIENT)
    assert summaries(coaching.runtime)

    with coaching.runtime.db.session() as session:
        session.execute(sa.delete(Enrollment).where(Enrollment.id == enrollment))

    assert summaries(coaching.runtime) == {}


def test_untick_last_removes_row(harness):
    coaching = build_coaching(harness)
    walk = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(TODAY))

    tick_habit(coaching.runtime, enrollment, walk, START, CLIENT)
    tick_habit(coaching.runtime, enrollment, walk, TODAY, CLIENT)
    assert summaries(coaching.runtime) == expected(coaching.runtime)
    untick_habit(coaching.runtime, enrollment, walk, TODAY, CLIENT)
    [(count, first, last, previous, _)] = summaries(coaching.runtime).values()
    assert (count, first, last, previous) == (1, START, START, None)
    untick_habit(coaching.runtime, enrollment, walk, START, CLIENT)

    assert summaries(coaching.runtime) == {}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]
)
def test_upgrade_summarizes_existing_ticks(backend, tmp_path, request):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/state.sqlite3"
    else:
        url = request.getfixturevalue("mysql_database_factory")("upgrade")
    engine = sa.create_engine(url)
    request.addfinalizer(engine.dispose)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(engine, connection), "0004")
        _add_site(connection)
        days = [dt.date(2024, 2, 27), dt.date(2024, 2, 29), dt.date(2024, 3, 1)]
        connection.execute(
            sa.insert(HabitTick),
            [tick_row(1, 1, day) for day in days] + [tick_row(1, 2, days[0])],
        )

    upgrade(engine)

    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(HabitTickSummary.habit_id, *_columns()).order_by("habit_id")
        ).all()
    assert [tuple(row) for row in rows] == [
        (1, *_values(Totals.of(days))),
        (2, *_values(Totals.of(days[:1]))),
    ]


def _columns():
    return [HabitTickSummary.__table__.c[name] for name in SUMMARY_COLUMNS]


def _values(totals: Totals) -> tuple:
    return tuple(getattr(totals, name) for name in SUMMARY_COLUMNS)


def _add_site(connection: sa.Connection) -> None:
    """One program with two habits and one enrollment, in revision 0004's tables."""
    statements = [
        "INSERT INTO coaches (id, wp_user_id, display_name, email, created_at) "
        "VALUES (1, 1, 'Coach', 'coach@example.org', '2024-01-01')",
        "INSERT INTO programs (id, slug, title, description, messaging_enabled, "
        "created_at, updated_at) VALUES (1, 'p', 'P', '', 1, '2024-01-01', "
        "'2024-01-01')",
        "INSERT INTO cohorts (id, program_id, name, kind, coach_id, is_open, "
        "appointments_enabled, created_at) VALUES (1, 1, 'C', 'rolling', 1, 1, 0, "
        "'2024-01-01')",
        "INSERT INTO habits (id, program_id, position, title, description, "
        "schedule, weekdays, start_offset_days, length_amount, length_unit) "
        "VALUES (1, 1, 0, 'H', '', 'daily', 0, 0, 4, 'weeks'), "
        "(2, 1, 1, 'I', '', 'daily', 0, 0, 4, 'weeks')",
        "INSERT INTO enrollments (id, wp_user_id, program_id, cohort_id, status, "
        "start_date, enrolled_by_hand, unenrolled_by_hand, created_at, updated_at, "
        "off_track, progress_percent, milestones_done, milestones_total, "
        "habit_dates_done, habit_dates_due) VALUES (1, 5, 1, 1, 'active', "
        "'2024-02-20', 0, 0, '2024-01-01', '2024-01-01', 0, 0, 0, 0, 0, 0)",
    ]
    for statement in statements:
        connection.execute(sa.text(statement))


def test_command_rebuilds_summaries(tmp_path):
    url = f"sqlite:///{tmp_path}/state.sqlite3"
    engine = sa.create_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        _add_site(connection)
        connection.execute(
            sa.insert(HabitTick),
            [
                tick_row(1, 1, dt.date(2024, 2, 21)),
                tick_row(1, 2, dt.date(2024, 2, 22)),
            ],
        )
    engine.dispose()
    config = tmp_path / "coachbridge.toml"
    config.write_text(f'[state]\ndatabase_url = "{url}"\n')

    result = _command("db", "rebuild-summaries", config=config)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "rebuilt 2 habit tick summaries"
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        count = connection.scalar(
            sa.select(sa.func.count()).select_from(HabitTickSummary)
        )
    engine.dispose()
    assert count == 2


def test_command_needs_upgrade(tmp_path):
    config = tmp_path / "coachbridge.toml"
    config.write_text(f'[state]\ndatabase_url = "sqlite:///{tmp_path}/new.sqlite3"\n')

    result = _command("db", "rebuild-summaries", config=config)

    assert result.returncode == 2
    assert "new.sqlite3 does not exist" in result.stderr
    assert "run 'coachbridge db upgrade' first" in result.stderr
    assert not (tmp_path / "new.sqlite3").exists()


def test_command_on_an_older_schema(tmp_path):
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(engine, connection), "0004")
    engine.dispose()
    config = tmp_path / "coachbridge.toml"
    config.write_text(f'[state]\ndatabase_url = "{url}"\n')

    result = _command("db", "rebuild-summaries", config=config)

    assert result.returncode == 2
    assert "at revision 0004" in result.stderr
    assert "run 'coachbridge db upgrade' first" in result.stderr


def _command(*args: str, config) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["COACHBRIDGE_CONFIG"] = str(config)
    executable = os.path.join(os.path.dirname(sys.executable), "coachbridge")
    return subprocess.run(
        [executable, *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_residue_modulus_shared():
    from bridge import evaluation

    assert evaluation.RESIDUE_MODULUS == tick_summaries.RESIDUE_MODULUS == 42


@pytest.mark.mariadb
@pytest.mark.parametrize("harness", ["mariadb"], indirect=True)
def test_concurrent_ticks_nightly_and_rebuild(harness):
    coaching = build_coaching(harness)
    habits = [coaching.add_habit("Walk"), coaching.add_habit("Read")]
    enrollments = [coaching.enroll(START, wp_user_id=n) for n in range(1, 13)]
    coaching.at(noon_utc(TODAY))
    errors: list[BaseException] = []

    def tick_all(offset: int) -> None:
        # Each thread ticks every fourth enrollment, so enrollments with
        # neighbouring ids get their first summary rows at the same time.
        try:
            for enrollment in enrollments[offset::4]:
                for day in range(0, 21, 3):
                    for habit in habits:
                        due_date = START + dt.timedelta(days=day)
                        tick_habit(
                            coaching.runtime, enrollment, habit, due_date, CLIENT
                        )
                untick_habit(coaching.runtime, enrollment, habits[0], START, CLIENT)
        except BaseException as error:
            errors.append(error)

    def nightly_and_rebuild() -> None:
        try:
            for _ in range(3):
                summary = evaluate_all(coaching.runtime, batch_size=3)
                assert summary.errors == 0
                rebuild_all(coaching.runtime, chunk=5)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=tick_all, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=nightly_and_rebuild))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert summaries(coaching.runtime) == expected(coaching.runtime)
    assert len(summaries(coaching.runtime)) == 2 * len(enrollments)


@pytest.mark.parametrize(
    "stored",
    ["2024-1-5", "2024-01-05 00:00:00", " 2024-01-05", "soon", "2026-11-31"],
)
def test_rebuild_rejects_malformed_sqlite_dates(tmp_path, stored):
    url = f"sqlite:///{tmp_path}/state.sqlite3"
    engine = sa.create_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        _add_site(connection)
        connection.execute(
            sa.text(
                "INSERT INTO habit_ticks (enrollment_id, habit_id, due_date, "
                "ticked_at) VALUES (1, 2, :stored, '2024-02-01 00:00:00')"
            ),
            {"stored": stored},
        )

    with engine.begin() as connection, pytest.raises(InvalidRequest) as raised:
        rebuild(connection)
    engine.dispose()

    message = str(raised.value)
    assert repr(stored) in message
    assert "enrollment 1, habit 2" in message
    assert "YYYY-MM-DD" in message


@pytest.mark.mariadb
def test_state_connections_raise_group_concat_limit(mysql_database_factory):
    from bridge.db import GROUP_CONCAT_MAX_LEN, create_state_engine

    engine = create_state_engine(mysql_database_factory("concat"))
    with engine.connect() as connection:
        limit = connection.scalar(sa.text("SELECT @@SESSION.group_concat_max_len"))
    engine.dispose()

    assert limit == GROUP_CONCAT_MAX_LEN
