"""Loading programs files: the shipped sample, idempotence, validation, locking."""

from __future__ import annotations

import copy
import datetime as dt
import json
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import selectinload

from bridge.cli import cli
from bridge.errors import Conflict, InvalidRequest
from bridge.models import (
    Coach,
    Cohort,
    CohortKind,
    DueUnit,
    Enrollment,
    Habit,
    Milestone,
    Program,
    ProgramMembership,
    ScheduleKind,
)
from bridge.programs_file import load_programs_file
from tests.wpsite import WordPressSite

SAMPLES = Path(__file__).parent / "fixtures" / "programs"
SAMPLE_TOML = SAMPLES / "sample.toml"
SAMPLE_JSON = SAMPLES / "sample.json"


def sample_data() -> dict:
    with SAMPLE_TOML.open("rb") as handle:
        return tomllib.load(handle)


def write_json(tmp_path: Path, data: dict, name: str = "programs.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, default=str, ensure_ascii=False), "utf-8")
    return path


def snapshot(runtime) -> dict:
    """Return every row the loader writes, as comparable plain values."""
    tables = [Program, ProgramMembership, Milestone, Habit, Cohort, Coach]
    ignored = {"created_at", "updated_at"}
    state = {}
    with runtime.db.session() as session:
        for model in tables:
            columns = [c for c in model.__table__.columns if c.name not in ignored]
            rows = session.execute(sa.select(*columns).order_by(*columns[:2])).all()
            state[model.__tablename__] = [tuple(row) for row in rows]
    return state


@pytest.fixture
def runtime(make_runtime):
    return make_runtime()


def program_by_slug(runtime, slug: str) -> Program:
    collections = (
        Program.milestones,
        Program.habits,
        Program.cohorts,
        Program.memberships,
    )
    query = (
        sa.select(Program)
        .where(Program.slug == slug)
        .options(*(selectinload(collection) for collection in collections))
    )
    with runtime.db.session() as session:
        program = session.scalar(query)
    assert program is not None
    return program


def add_enrollment(runtime, slug: str) -> None:
    with runtime.db.session() as session:
        program = session.scalar(sa.select(Program).where(Program.slug == slug))
        session.add(
            Enrollment(
                wp_user_id=500,
                program_id=program.id,
                cohort_id=program.cohorts[0].id,
                start_date=dt.date(2025, 3, 1),
            )
        )


# The shipped sample.


def test_sample_creates_programs(runtime):
    result = load_programs_file(runtime, SAMPLE_TOML)

    assert [(p.slug, p.status) for p in result.programs] == [
        ("strength-12", "created"),
        ("mobility", "created"),
    ]
    assert result.coaches_created == 2
    assert result.changed
    lines = result.lines()
    assert lines[1] == (
        "program strength-12: created (3 milestones, 3 habits, 2 cohorts, "
        "memberships 101, 102)"
    )
    assert lines[-1] == "coaches: 2 created, 0 updated"


def test_sample_rows(runtime):
    load_programs_file(runtime, SAMPLE_TOML)

    program = program_by_slug(runtime, "strength-12")
    assert program.title == "Strength in 12 weeks 💪"
    assert {m.membership_id for m in program.memberships} == {101, 102}
    milestones = [(m.title, m.due_amount, m.due_unit) for m in program.milestones]
    assert milestones == [
        ("Book the kickoff call", 3, DueUnit.DAYS),
        ("First full push-up", 4, DueUnit.WEEKS),
        ("First pull-up", 3, DueUnit.MONTHS),
    ]
    session_habit, walk, weigh_in = program.habits
    assert session_habit.schedule == ScheduleKind.WEEKDAYS
    assert session_habit.weekdays == 0b10101  # Monday, Wednesday, Friday
    assert (session_habit.length_amount, session_habit.length_unit) == (12, "weeks")
    assert walk.start_offset_days == 7
    assert weigh_in.schedule == ScheduleKind.INTERVAL
    assert weigh_in.interval_days == 14
    rolling, spring = program.cohorts
    assert rolling.kind == CohortKind.ROLLING
    assert rolling.start_date is None
    assert rolling.capacity is None
    assert spring.kind == CohortKind.FIXED
    assert spring.start_date == dt.date(2025, 4, 7)
    assert spring.capacity == 20
    assert spring.appointments_enabled
    assert spring.booking_url == "https://booking.example.org/kofi"


def test_coach_names_from_file(runtime):
    load_programs_file(runtime, SAMPLE_TOML)

    with runtime.db.session() as session:
        coaches = session.scalars(sa.select(Coach).order_by(Coach.wp_user_id)).all()
    assert [(c.wp_user_id, c.display_name) for c in coaches] == [
        (2, "Zoë Martin"),
        (3, "Kofi Mensah"),
    ]


def test_json_sample_same_as_toml(make_runtime):
    from_toml = make_runtime()
    from_json = make_runtime()

    load_programs_file(from_toml, SAMPLE_TOML)
    load_programs_file(from_json, SAMPLE_JSON)

    assert snapshot(from_toml) == snapshot(from_json)


@pytest.mark.parametrize("sample", [SAMPLE_TOML, SAMPLE_JSON], ids=["toml", "json"])
def test_byte_order_mark_accepted(make_runtime, tmp_path, sample):
    plain = make_runtime()
    marked = make_runtime()
    copy = tmp_path / sample.name
    copy.write_bytes(b"\xef\xbb\xbf" + sample.read_bytes())

    load_programs_file(plain, sample)
    load_programs_file(marked, copy)

    assert snapshot(marked) == snapshot(plain)


def test_second_load_changes_nothing(runtime):
    load_programs_file(runtime, SAMPLE_TOML)
    before = snapshot(runtime)

    result = load_programs_file(runtime, SAMPLE_TOML)

    assert not result.changed
    assert [p.status for p in result.programs] == ["unchanged", "unchanged"]
    assert snapshot(runtime) == before


def test_changed_title_updates(runtime, tmp_path):
    load_programs_file(runtime, SAMPLE_TOML)
    data = sample_data()
    data["programs"][1]["title"] = "Mobilité 2"

    result = load_programs_file(runtime, write_json(tmp_path, data))

    assert [p.status for p in result.programs] == ["unchanged", "updated"]
    assert result.programs[1].changes == ["title changed"]
    assert program_by_slug(runtime, "mobility").title == "Mobilité 2"


def test_program_missing_from_file_kept(runtime, tmp_path):
    load_programs_file(runtime, SAMPLE_TOML)
    data = sample_data()
    del data["programs"][1]

    load_programs_file(runtime, write_json(tmp_path, data))

    assert program_by_slug(runtime, "mobility").title == "Mobilité au quotidien"


# Validation: every message names the program, the item and the field.

INVALID_CASES = [
    (
        "capacity zero",
        lambda d: d["programs"][0]["cohorts"][1].update(capacity=0),
        ["program 'strength-12'", "cohort 'Spring 2025'", "field capacity"],
    ),
    (
        "ftp booking url",
        lambda d: d["programs"][0]["cohorts"][1].update(booking_url="ftp://x.org/a"),
        ["cohort 'Spring 2025'", "invalid booking_url", "http://"],
    ),
    (
        "script booking url",
        lambda d: d["programs"][0]["cohorts"][1].update(booking_url="javascript:x()"),
        ["cohort 'Spring 2025'", "invalid booking_url"],
    ),
    (
        "fixed without start",
        lambda d: d["programs"][0]["cohorts"][1].pop("start_date"),
        ["cohort 'Spring 2025'", "missing start_date"],
    ),
    (
        "rolling with start",
        lambda d: d["programs"][0]["cohorts"][0].update(start_date="2025-05-01"),
        ["cohort 'Rolling with Zoë'", "start_date is set on a rolling cohort"],
    ),
    (
        "appointments without url",
        lambda d: d["programs"][0]["cohorts"][1].pop("booking_url"),
        ["cohort 'Spring 2025'", "missing booking_url"],
    ),
    (
        "unknown cohort type",
        lambda d: d["programs"][0]["cohorts"][0].update(type="weekly"),
        ["cohort 'Rolling with Zoë'", "field type", "'rolling' or 'fixed'"],
    ),
    (
        "coach as text",
        lambda d: d["programs"][1]["cohorts"][0].update(coach="2"),
        ["program 'mobility'", "cohort 'Everyone'", "field coach"],
    ),
    (
        "start date as number",
        lambda d: d["programs"][0]["cohorts"][1].update(start_date=1700000000),
        ["cohort 'Spring 2025'", "field start_date", "expected a date"],
    ),
    (
        "too many habits",
        lambda d: d["programs"][0].update(habits=d["programs"][0]["habits"] * 17),
        ["program 'strength-12'", "field habits", "at most 50 items"],
    ),
    (
        "start date as digits",
        lambda d: d["programs"][0]["cohorts"][1].update(start_date="86400"),
        ["cohort 'Spring 2025'", "field start_date", "expected a date"],
    ),
    (
        "start date near the end of the calendar",
        lambda d: d["programs"][0]["cohorts"][1].update(start_date="9999-12-15"),
        ["cohort 'Spring 2025'", "field start_date", "before the year 9000"],
    ),
    (
        "bad due unit",
        lambda d: d["programs"][0]["milestones"][0].update(due="3 fortnights"),
        ["milestone 'Book the kickoff call'", "invalid due '3 fortnights'"],
    ),
    (
        "due given twice",
        lambda d: d["programs"][0]["milestones"][0].update(due_amount=3),
        ["milestone 'Book the kickoff call'", "due is given twice"],
    ),
    (
        "missing due",
        lambda d: d["programs"][0]["milestones"][0].pop("due"),
        ["milestone 'Book the kickoff call'", "missing due"],
    ),
    (
        "negative due",
        lambda d: d["programs"][0]["milestones"][2].update(due_amount=-1),
        ["milestone 'First pull-up'", "due_amount", "at least 0"],
    ),
    (
        "unknown weekday",
        lambda d: d["programs"][0]["habits"][0].update(weekdays=["mon", "funday"]),
        ["habit 'Strength session'", "invalid weekday 'funday'"],
    ),
    (
        "duplicate weekday",
        lambda d: d["programs"][0]["habits"][0].update(weekdays=["mon", "Mon"]),
        ["habit 'Strength session'", "duplicate weekday 'mon'"],
    ),
    (
        "weekdays missing",
        lambda d: d["programs"][0]["habits"][0].pop("weekdays"),
        ["habit 'Strength session'", "missing weekdays"],
    ),
    (
        "weekdays on daily",
        lambda d: d["programs"][0]["habits"][1].update(weekdays=["mon"]),
        ["habit 'Walk 20 minutes'", "weekdays applies only"],
    ),
    (
        "interval without days",
        lambda d: d["programs"][0]["habits"][2].pop("every_days"),
        ["habit 'Weigh-in'", "missing every_days"],
    ),
    (
        "every_days zero",
        lambda d: d["programs"][0]["habits"][2].update(every_days=0),
        ["habit 'Weigh-in'", "field every_days"],
    ),
    (
        "zero length",
        lambda d: d["programs"][0]["habits"][1].update(length="0 weeks"),
        ["habit 'Walk 20 minutes'", "length_amount", "at least 1"],
    ),
    (
        "negative offset",
        lambda d: d["programs"][0]["habits"][1].update(start_offset_days=-2),
        ["habit 'Walk 20 minutes'", "field start_offset_days"],
    ),
    (
        "misspelt field",
        lambda d: d["programs"][0]["cohorts"][1].update(capacitty=3),
        ["cohort 'Spring 2025'", "field capacitty", "unknown field"],
    ),
    (
        "bad slug",
        lambda d: d["programs"][0].update(slug="Strength 12"),
        ["program 'Strength 12'", "field slug"],
    ),
    (
        "duplicate slug",
        lambda d: d["programs"][1].update(slug="strength-12"),
        ["duplicate program slug 'strength-12'"],
    ),
    (
        "duplicate cohort",
        lambda d: d["programs"][0]["cohorts"][1].update(name="Rolling with Zoë"),
        ["program 'strength-12'", "duplicate cohort name"],
    ),
    (
        "duplicate membership",
        lambda d: d["programs"][0].update(memberships=[101, 101]),
        ["program 'strength-12'", "duplicate membership id 101"],
    ),
    (
        "negative membership",
        lambda d: d["programs"][0].update(memberships=[-5]),
        ["program 'strength-12'", "field memberships", "item 1"],
    ),
    (
        "missing title",
        lambda d: d["programs"][1].pop("title"),
        ["program 'mobility'", "field title", "missing required field"],
    ),
    (
        "empty title",
        lambda d: d["programs"][0]["milestones"][1].update(title="  "),
        ["program 'strength-12'", "milestone #2", "field title"],
    ),
    (
        "no programs",
        lambda d: d.update(programs=[]),
        ["field programs"],
    ),
    (
        "coach id above bigint",
        lambda d: d["programs"][0]["cohorts"][0].update(coach=2**63),
        ["cohort 'Rolling with Zoë'", "field coach", "less than or equal"],
    ),
    (
        "membership id above bigint",
        lambda d: d["programs"][0].update(memberships=[2**63]),
        ["program 'strength-12'", "field memberships", "less than or equal"],
    ),
    (
        "coach entry id above bigint",
        lambda d: d["coaches"][0].update(wp_user_id=2**70),
        ["field wp_user_id", "less than or equal"],
    ),
    (
        "huge capacity",
        lambda d: d["programs"][0]["cohorts"][1].update(capacity=2**31),
        ["cohort 'Spring 2025'", "field capacity", "less than or equal"],
    ),
    (
        "due beyond int range",
        lambda d: d["programs"][0]["milestones"][0].update(
            due="99999999999999999999 weeks"
        ),
        ["milestone 'Book the kickoff call'", "too long", "at most 10000 weeks"],
    ),
    (
        "due of a thousand years",
        lambda d: d["programs"][0]["milestones"][0].update(due="12000 months"),
        ["milestone 'Book the kickoff call'", "too long", "at most 10000 months"],
    ),
    (
        "due amount field too long",
        lambda d: d["programs"][0]["milestones"][2].update(due_amount=10_001),
        ["milestone 'First pull-up'", "too long", "at most 10000 months"],
    ),
    (
        "length too long",
        lambda d: d["programs"][0]["habits"][1].update(length="10001 days"),
        ["habit 'Walk 20 minutes'", "too long", "at most 10000 days"],
    ),
    (
        "every_days too large",
        lambda d: d["programs"][0]["habits"][2].update(every_days=36_501),
        ["habit 'Weigh-in'", "field every_days", "less than or equal to 36500"],
    ),
    (
        "offset too large",
        lambda d: d["programs"][0]["habits"][1].update(start_offset_days=2**63),
        ["habit 'Walk 20 minutes'", "field start_offset_days"],
    ),
    (
        "booking url without host",
        lambda d: d["programs"][0]["cohorts"][1].update(booking_url="http://:80/a"),
        ["cohort 'Spring 2025'", "invalid booking_url", "host"],
    ),
    (
        "booking url with only user info",
        lambda d: d["programs"][0]["cohorts"][1].update(booking_url="https://@/"),
        ["cohort 'Spring 2025'", "invalid booking_url", "host"],
    ),
    (
        "booking url with control character",
        lambda d: d["programs"][0]["cohorts"][1].update(
            booking_url="https://booking.example.org/\x00kofi"
        ),
        ["cohort 'Spring 2025'", "invalid booking_url", "control characters"],
    ),
    (
        "booking url with broken address",
        lambda d: d["programs"][0]["cohorts"][1].update(booking_url="https://[::1/a"),
        ["cohort 'Spring 2025'", "invalid booking_url 'https://[::1/a'"],
    ),
    (
        "booking url with port out of range",
        lambda d: d["programs"][0]["cohorts"][1].update(
            booking_url="https://booking.example.org:99999/kofi"
        ),
        ["cohort 'Spring 2025'", "invalid booking_url"],
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(change, expected, id=name)
        for name, change, expected in INVALID_CASES
    ],
)
def test_invalid_file_rejected(runtime, tmp_path, change, expected):
    data = sample_data()
    change(data)
    path = write_json(tmp_path, data)

    with pytest.raises(InvalidRequest) as caught:
        load_programs_file(runtime, path)

    message = caught.value.message
    for text in expected:
        assert text in message
    assert snapshot(runtime)["programs"] == []


def test_bad_second_program_changes_nothing(runtime, tmp_path):
    data = sample_data()
    data["programs"][1]["cohorts"][0]["capacity"] = -1

    with pytest.raises(InvalidRequest):
        load_programs_file(runtime, write_json(tmp_path, data))

    assert all(rows == [] for rows in snapshot(runtime).values())


def test_unsupported_extension(runtime, tmp_path):
    path = tmp_path / "programs.yaml"
    path.write_text("programs: []")

    with pytest.raises(InvalidRequest, match="name the file"):
        load_programs_file(runtime, path)


def test_invalid_toml_syntax(runtime, tmp_path):
    path = tmp_path / "programs.toml"
    path.write_text("[[programs]\nslug = ")

    with pytest.raises(InvalidRequest, match="invalid TOML"):
        load_programs_file(runtime, path)


def test_invalid_json_syntax(runtime, tmp_path):
    path = tmp_path / "programs.json"
    path.write_text('{"programs": [}')

    with pytest.raises(InvalidRequest, match="invalid JSON"):
        load_programs_file(runtime, path)


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_deeply_nested_file(runtime, tmp_path, suffix):
    path = tmp_path / f"programs{suffix}"
    if suffix == ".json":
        path.write_text('{"programs": ' + "[" * 100_000 + "]" * 100_000 + "}")
    else:
        path.write_text("programs = " + "[" * 100_000 + "]" * 100_000 + "\n")

    with pytest.raises(InvalidRequest, match="nested too deeply"):
        load_programs_file(runtime, path)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]
)
@pytest.mark.parametrize("item", ["program", "milestone", "habit"])
def test_description_too_long(backend, item, request, make_runtime, tmp_path):
    state_url = None
    if backend == "mariadb":
        state_url = request.getfixturevalue("mysql_database_factory")("state")
    runtime = make_runtime(state_url=state_url)
    data = sample_data()
    program = data["programs"][0]
    target = {
        "program": program,
        "milestone": program["milestones"][0],
        "habit": program["habits"][0],
    }[item]
    target["description"] = "é" * 40_000

    with pytest.raises(InvalidRequest) as caught:
        load_programs_file(runtime, write_json(tmp_path, data))

    assert "field description" in caught.value.message
    assert "at most 10000 characters" in caught.value.message
    assert snapshot(runtime)["programs"] == []


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".json", '{"programs": [{"slug": "a", "title": "T", "memberships": [%s]}]}'),
        (".toml", '[[programs]]\nslug = "a"\ntitle = "T"\nmemberships = [%s]\n'),
    ],
)
def test_number_with_too_many_digits(runtime, tmp_path, suffix, text):
    path = tmp_path / f"programs{suffix}"
    path.write_text(text % ("9" * 5000), encoding="utf-8")

    with pytest.raises(InvalidRequest) as caught:
        load_programs_file(runtime, path)

    assert "number with too many digits" in caught.value.message
    assert "sys.set_int_max_str_digits" not in caught.value.message


def test_json_duplicate_key_rejected(runtime, tmp_path):
    path = tmp_path / "programs.json"
    path.write_text(
        '{"programs": [{"slug": "first", "slug": "second", "title": "T"}]}',
        encoding="utf-8",
    )

    with pytest.raises(InvalidRequest) as caught:
        load_programs_file(runtime, path)

    assert "invalid JSON" in caught.value.message
    assert "duplicate key 'slug'" in caught.value.message
    assert snapshot(runtime)["programs"] == []


def test_missing_file(runtime, tmp_path):
    with pytest.raises(InvalidRequest, match="cannot read"):
        load_programs_file(runtime, tmp_path / "absent.toml")


# Locked content once a program has enrollments.


def test_milestones_locked_after_enrollment(runtime, tmp_path):
    load_programs_file(runtime, SAMPLE_TOML)
    add_enrollment(runtime, "strength-12")
    before = snapshot(runtime)
    data = sample_data()
    data["programs"][0]["milestones"][0]["due"] = "5 days"
    data["programs"][1]["title"] = "Changed too"

    with pytest.raises(Conflict) as caught:
        load_programs_file(runtime, write_json(tmp_path, data))

    message = caught.value.message
    assert "program 'strength-12'" in message
    assert "changes its milestones" in message
    assert "already has enrollments" in message
    assert snapshot(runtime) == before


def test_habits_locked_after_enrollment(runtime, tmp_path):
    load_programs_file(runtime, SAMPLE_TOML)
    add_enrollment(runtime, "strength-12")
    data = sample_data()
    data["programs"][0]["habits"].pop()

    with pytest.raises(Conflict, match="changes its habits"):
        load_programs_file(runtime, write_json(tmp_path, data))


def test_cohorts_change_after_enrollment(runtime, tmp_path):
    load_programs_file(runtime, SAMPLE_TOML)
    add_enrollment(runtime, "strength-12")
    data = sample_data()
    data["programs"][0]["cohorts"][1]["capacity"] = 30
    data["programs"][0]["cohorts"][1]["open"] = False
    data["programs"][0]["cohorts"].append({"name": "Summer", "coach": 3})
    data["programs"][0]["memberships"] = [102, 103]

    result = load_programs_file(runtime, write_json(tmp_path, data))

    assert result.programs[0].changes == [
        "memberships now 102, 103",
        "cohort 'Spring 2025' capacity, is_open changed",
        "cohort 'Summer' created",
    ]
    program = program_by_slug(runtime, "strength-12")
    assert {m.membership_id for m in program.memberships} == {102, 103}
    assert [c.name for c in program.cohorts] == [
        "Rolling with Zoë",
        "Spring 2025",
        "Summer",
    ]
    assert program.cohorts[1].capacity == 30
    assert not program.cohorts[1].is_open


def test_milestones_replaced_without_enrollments(runtime, tmp_path):
    load_programs_file(runtime, SAMPLE_TOML)
    data = sample_data()
    data["programs"][0]["milestones"] = [{"title": "Only one", "due": "1 week"}]

    result = load_programs_file(runtime, write_json(tmp_path, data))

    assert result.programs[0].changes == ["milestones replaced (1)"]
    program = program_by_slug(runtime, "strength-12")
    assert [m.title for m in program.milestones] == ["Only one"]


# With a WordPress database: coaches and memberships are checked there.


def wordpress_file(tmp_path: Path, coach: int, membership: int) -> Path:
    data = {
        "programs": [
            {
                "slug": "força",
                "title": "Força 💪",
                "memberships": [membership],
                "cohorts": [{"name": "Équipe ☀", "coach": coach}],
            }
        ]
    }
    return write_json(tmp_path, data)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def wordpress(request, make_runtime, tmp_path):
    if request.param == "sqlite":
        wordpress_url = f"sqlite:///{tmp_path}/wp.sqlite3"
        state_url = None
    else:
        factory = request.getfixturevalue("mysql_database_factory")
        wordpress_url, state_url = factory("wp"), factory("state")
    engine = sa.create_engine(wordpress_url)
    request.addfinalizer(engine.dispose)
    site = WordPressSite(engine)
    site.create_schema()
    runtime = make_runtime(state_url=state_url, wordpress_url=wordpress_url)
    return site, runtime


def test_slug_rejects_accents(wordpress, tmp_path):
    site, runtime = wordpress
    coach = site.add_user("zoe", "zoe@example.org", "Zoë 🌱")
    membership = site.add_membership("Monthly")

    with pytest.raises(InvalidRequest, match="program 'força', field slug"):
        load_programs_file(runtime, wordpress_file(tmp_path, coach, membership))


def test_coach_cached_from_wordpress(wordpress, tmp_path):
    site, runtime = wordpress
    coach = site.add_user("zoe", "zoe@example.org", "Zoë 🌱")
    membership = site.add_membership("Monthly")
    data = {
        "coaches": [{"wp_user_id": coach, "display_name": "Ignored"}],
        "programs": [
            {
                "slug": "forca",
                "title": "Força 💪",
                "memberships": [membership],
                "cohorts": [{"name": "Équipe ☀", "coach": coach}],
            }
        ],
    }

    load_programs_file(runtime, write_json(tmp_path, data))

    with runtime.db.session() as session:
        cached = session.scalar(sa.select(Coach))
        cohort = session.scalar(sa.select(Cohort))
        program = session.scalar(sa.select(Program))
    assert (cached.display_name, cached.email) == ("Zoë 🌱", "zoe@example.org")
    assert cohort.name == "Équipe ☀"
    assert program.title == "Força 💪"


def test_unknown_coach_and_membership(wordpress, tmp_path):
    site, runtime = wordpress
    data = {
        "programs": [
            {
                "slug": "forca",
                "title": "Força",
                "memberships": [999],
                "cohorts": [{"name": "A", "coach": 998}],
            }
        ]
    }

    with pytest.raises(InvalidRequest) as caught:
        load_programs_file(runtime, write_json(tmp_path, data))

    message = caught.value.message
    assert "program 'forca', cohort 'A', field coach: WordPress user 998" in message
    assert "field memberships: MemberPress membership 999 not found" in message
    assert snapshot(runtime)["programs"] == []


# The command line.


def test_cli_load_and_list(tmp_path):
    config = tmp_path / "coachbridge.toml"
    state = tmp_path / "state.sqlite3"
    config.write_text(f'[state]\ndatabase_url = "sqlite:///{state}"\n')
    runner = CliRunner()
    base = ["--config", str(config)]

    upgraded = runner.invoke(cli, [*base, "db", "upgrade"])
    loaded = runner.invoke(cli, [*base, "programs", "load", str(SAMPLE_TOML)])
    again = runner.invoke(cli, [*base, "programs", "load", str(SAMPLE_TOML)])
    listed = runner.invoke(cli, [*base, "enrollments", "--json"])

    assert upgraded.exit_code == 0, upgraded.output
    assert loaded.exit_code == 0, loaded.output
    assert "program strength-12: created" in loaded.output
    assert "program mobility: unchanged" in again.output
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == []


def test_sample_toml_and_json_in_step():
    with SAMPLE_JSON.open(encoding="utf-8") as handle:
        from_json = json.load(handle)
    from_toml = copy.deepcopy(sample_data())
    cohort = from_toml["programs"][0]["cohorts"][1]
    cohort["start_date"] = cohort["start_date"].isoformat()

    assert from_json == from_toml
