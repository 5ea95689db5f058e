"""Tests for calendar arithmetic and the site's time zone."""

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.calendar import (
    DurationUnit,
    add_duration,
    add_months,
    site_day_bounds_utc,
    site_day_start_utc,
    site_today,
    site_zone,
    to_site_date,
)

PARIS = ZoneInfo("Europe/Paris")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        pytest.param(date(2023, 1, 31), 1, date(2023, 2, 28), id="jan31-non-leap"),
        pytest.param(date(2024, 1, 31), 1, date(2024, 2, 29), id="jan31-leap"),
        pytest.param(date(2024, 8, 31), 1, date(2024, 9, 30), id="aug31"),
        pytest.param(date(2024, 2, 29), 12, date(2025, 2, 28), id="feb29-plus-year"),
        pytest.param(date(2024, 2, 29), 48, date(2028, 2, 29), id="feb29-plus-4y"),
        pytest.param(date(2024, 4, 30), 1, date(2024, 5, 30), id="apr30"),
        pytest.param(date(2024, 12, 31), 1, date(2025, 1, 31), id="year-rollover"),
        pytest.param(date(2024, 1, 15), 0, date(2024, 1, 15), id="zero"),
        pytest.param(date(2024, 3, 31), -1, date(2024, 2, 29), id="negative"),
    ],
)
def test_add_months_clamps_month_end(start: date, months: int, expected: date):
    assert add_months(start, months) == expected


@pytest.mark.parametrize(
    ("amount", "unit", "expected"),
    [
        pytest.param(0, "days", date(2024, 1, 31), id="zero-days"),
        pytest.param(10, "days", date(2024, 2, 10), id="days"),
        pytest.param(2, "weeks", date(2024, 2, 14), id="weeks"),
        pytest.param(1, "months", date(2024, 2, 29), id="months"),
        pytest.param(1, DurationUnit.MONTHS, date(2024, 2, 29), id="enum-unit"),
    ],
)
def test_add_duration_units(amount: int, unit: str, expected: date):
    assert add_duration(date(2024, 1, 31), amount, unit) == expected


@pytest.mark.parametrize(
    ("amount", "unit", "message"),
    [
        pytest.param(1, "fortnights", "invalid unit 'fortnights'", id="unit"),
        pytest.param(-1, "days", "invalid amount -1", id="negative"),
        pytest.param(True, "days", "invalid amount True", id="bool"),
        pytest.param(1.5, "days", "invalid amount 1.5", id="float"),
    ],
)
def test_add_duration_rejects(amount: object, unit: str, message: str):
    with pytest.raises(ValueError, match=message):
        add_duration(date(2024, 1, 1), amount, unit)


def test_add_duration_rejects_datetime():
    with pytest.raises(ValueError, match="expected a datetime.date"):
        add_duration(datetime(2024, 1, 1, tzinfo=UTC), 1, "days")


@pytest.mark.parametrize(
    ("timezone_string", "gmt_offset", "expected_offset"),
    [
        pytest.param("UTC+5.5", None, timedelta(hours=5, minutes=30), id="utc+5.5"),
        pytest.param("UTC-9.5", "0", -timedelta(hours=9, minutes=30), id="utc-9.5"),
        pytest.param("UTC+0", None, timedelta(0), id="utc+0"),
        pytest.param("UTC+14", None, timedelta(hours=14), id="utc+14"),
        pytest.param("", "5.5", timedelta(hours=5, minutes=30), id="gmt-str-5.5"),
        pytest.param(None, 5.75, timedelta(hours=5, minutes=45), id="gmt-5.75"),
        pytest.param("", -9.5, -timedelta(hours=9, minutes=30), id="gmt-neg-9.5"),
        pytest.param("", "-9.5", -timedelta(hours=9, minutes=30), id="gmt-str-neg"),
        pytest.param("  ", " 2 ", timedelta(hours=2), id="padded"),
        pytest.param("", 0, timedelta(0), id="gmt-zero"),
        pytest.param("", "", timedelta(0), id="both-empty"),
        pytest.param(None, None, timedelta(0), id="both-none"),
    ],
)
def test_site_zone_fixed_offsets(
    timezone_string: str | None, gmt_offset: object, expected_offset: timedelta
):
    zone = site_zone(timezone_string, gmt_offset)

    assert zone.utcoffset(datetime(2024, 7, 1)) == expected_offset
    assert zone.utcoffset(datetime(2024, 1, 1)) == expected_offset


def test_site_zone_name_wins_over_offset():
    zone = site_zone("Europe/Paris", "5.5")

    assert zone == PARIS


def test_site_zone_accepts_utc_name():
    zone = site_zone("UTC", None)

    assert zone.utcoffset(datetime(2024, 1, 1)) == timedelta(0)


@pytest.mark.parametrize(
    ("timezone_string", "gmt_offset", "message"),
    [
        pytest.param("Mars/Olympus", None, "'Mars/Olympus'", id="unknown-name"),
        pytest.param(
            "Europe",
            None,
            "unknown time zone 'Europe' in timezone_string",
            id="directory",
        ),
        pytest.param("../etc/passwd", None, "'../etc/passwd'", id="path"),
        pytest.param("UTC+25", None, "must be under 24 hours", id="manual-too-far"),
        pytest.param("", "abc", "invalid gmt_offset 'abc'", id="not-number"),
        pytest.param("", "5.33", "whole minutes", id="not-whole-minutes"),
        pytest.param("", 24, "under 24 hours", id="too-far"),
        pytest.param("", float("nan"), "finite", id="nan"),
        pytest.param("", True, "invalid gmt_offset True", id="bool"),
    ],
)
def test_site_zone_rejects(timezone_string: str, gmt_offset: object, message: str):
    with pytest.raises(ValueError, match=message):
        site_zone(timezone_string, gmt_offset)


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        pytest.param(
            PARIS, utc(2024, 3, 30, 23, 0, 1), date(2024, 3, 31), id="paris-spring"
        ),
        pytest.param(
            PARIS,
            utc(2024, 3, 30, 22, 59, 59),
            date(2024, 3, 30),
            id="paris-spring-eve",
        ),
        pytest.param(
            PARIS, utc(2024, 10, 26, 22, 0, 1), date(2024, 10, 27), id="paris-autumn"
        ),
        pytest.param(
            PARIS, utc(2024, 10, 26, 21, 59, 59), date(2024, 10, 26), id="paris-au-eve"
        ),
        pytest.param(
            LOS_ANGELES, utc(2024, 3, 10, 8, 0, 1), date(2024, 3, 10), id="la-spring"
        ),
        pytest.param(
            LOS_ANGELES, utc(2024, 3, 10, 7, 59, 59), date(2024, 3, 9), id="la-sp-eve"
        ),
        pytest.param(
            LOS_ANGELES, utc(2024, 11, 3, 7, 0, 1), date(2024, 11, 3), id="la-autumn"
        ),
        pytest.param(
            LOS_ANGELES, utc(2024, 11, 3, 6, 59, 59), date(2024, 11, 2), id="la-au-eve"
        ),
        pytest.param(
            site_zone("", "5.5"), utc(2024, 6, 1, 18, 30), date(2024, 6, 2), id="+5.5"
        ),
        pytest.param(
            site_zone("", "5.5"),
            utc(2024, 6, 1, 18, 29),
            date(2024, 6, 1),
            id="+5.5-eve",
        ),
        pytest.param(
            site_zone("", -9.5), utc(2024, 6, 2, 9, 30), date(2024, 6, 2), id="-9.5"
        ),
        pytest.param(
            site_zone("", -9.5), utc(2024, 6, 2, 9, 29), date(2024, 6, 1), id="-9.5-eve"
        ),
    ],
)
def test_site_today_after_local_midnight(zone, now: datetime, expected: date):
    assert site_today(now, zone) == expected


def test_site_today_converts_other_aware_zones():
    now = datetime(2024, 3, 31, 0, 0, 1, tzinfo=timezone(timedelta(hours=1)))

    assert site_today(now, LOS_ANGELES) == date(2024, 3, 30)


@pytest.mark.parametrize("function", [site_today, to_site_date])
def test_site_date_rejects_naive(function):
    with pytest.raises(ValueError, match="expected an aware datetime"):
        function(datetime(2024, 1, 1, 12), PARIS)


@pytest.mark.parametrize(
    ("zone_name", "day", "start", "hours"),
    [
        pytest.param(
            "Europe/Paris", date(2024, 3, 31), utc(2024, 3, 30, 23), 23, id="paris-sp"
        ),
        pytest.param(
            "Europe/Paris", date(2024, 10, 27), utc(2024, 10, 26, 22), 25, id="paris-au"
        ),
        pytest.param(
            "Europe/Paris", date(2024, 6, 15), utc(2024, 6, 14, 22), 24, id="paris-jun"
        ),
        pytest.param(
            "America/Los_Angeles", date(2024, 3, 10), utc(2024, 3, 10, 8), 23,
            id="la-sp"
        ),
        pytest.param(
            "America/Los_Angeles", date(2024, 11, 3), utc(2024, 11, 3, 7), 25,
            id="la-au"
        ),
        # Cuba and Chile skip local midnight when DST starts.
        pytest.param(
            "America/Havana", date(2024, 3, 10), utc(2024, 3, 10, 5), 23, id="havana"
        ),
        pytest.param(
            "America/Santiago", date(2024, 9, 8), utc(2024, 9, 8, 4), 23, id="santiago"
        ),
        pytest.param(
            "Australia/Lord_Howe", date(2024, 10, 6), utc(2024, 10, 5, 13, 30), 23.5,
            id="lord-howe-half-hour-dst",
        ),
        pytest.param(
            "Pacific/Apia", date(2011, 12, 30), utc(2011, 12, 30, 10), 0,
            id="apia-skipped-date",
        ),
    ],
)  # fmt: skip
def test_site_day_bounds(zone_name: str, day: date, start: datetime, hours: float):
    zone = ZoneInfo(zone_name)

    day_start, day_end = site_day_bounds_utc(day, zone)

    assert day_start == start
    assert day_end - day_start == timedelta(hours=hours)
    assert day_start.tzinfo is UTC
    assert day_end == site_day_start_utc(day + timedelta(days=1), zone)


@pytest.mark.parametrize(
    ("zone_name", "day"),
    [
        pytest.param("Europe/Paris", date(2024, 3, 31), id="paris-spring"),
        pytest.param("Europe/Paris", date(2024, 10, 27), id="paris-autumn"),
        pytest.param("America/Los_Angeles", date(2024, 3, 10), id="la-spring"),
        pytest.param("America/Los_Angeles", date(2024, 11, 3), id="la-autumn"),
    ],
)
def test_dst_day_is_one_site_date(zone_name: str, day: date):
    zone = ZoneInfo(zone_name)
    day_start, day_end = site_day_bounds_utc(day, zone)

    hourly = [day_start + timedelta(hours=hour) for hour in range(25)]
    inside = [instant for instant in hourly if instant < day_end]

    assert {to_site_date(instant, zone) for instant in inside} == {day}
    assert to_site_date(day_end, zone) == day + timedelta(days=1)
    assert to_site_date(day_start - timedelta(seconds=1), zone) == day - timedelta(1)


def test_site_day_start_rejects_datetime():
    with pytest.raises(ValueError, match="invalid day"):
        site_day_start_utc(datetime(2024, 1, 1, tzinfo=UTC), PARIS)


SAMPLE_ZONES = [
    ZoneInfo("Europe/Paris"),
    ZoneInfo("America/Los_Angeles"),
    ZoneInfo("America/Havana"),
    ZoneInfo("America/Santiago"),
    ZoneInfo("Australia/Lord_Howe"),
    ZoneInfo("Pacific/Apia"),
    site_zone("", "5.5"),
    site_zone("", "-9.5"),
    site_zone("", "5.75"),
]


@given(
    instant=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2037, 12, 31),
        timezones=st.just(UTC),
    ),
    zone=st.sampled_from(SAMPLE_ZONES),
)
def test_instant_lies_within_its_site_day(instant: datetime, zone):
    day = to_site_date(instant, zone)

    day_start, day_end = site_day_bounds_utc(day, zone)

    assert day_start <= instant < day_end
