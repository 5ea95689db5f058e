"""Calendar arithmetic and the site's time zone.

Every due date in coachbridge is a calendar date in the site's time zone. The
functions here convert between UTC instants and site dates. They never cut a UTC
timestamp to a date, because near midnight the UTC date and the site date differ.
"""

from __future__ import annotations

import math
import re
from calendar import monthrange
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class DurationUnit(StrEnum):
    """Unit of a milestone due delay or a habit length, stored as its string value."""

    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"


# WordPress stores a manual offset picked in Settings > General as "UTC+5.5".
_MANUAL_OFFSET = re.compile(r"UTC([+-])(\d+(?:\.\d+)?)")


def parse_duration_unit(value: str | DurationUnit, field: str) -> DurationUnit:
    """Convert a stored unit string to a DurationUnit.

    Raises ValueError naming ``field`` and the value when the unit is unknown.
    """
    try:
        return DurationUnit(value)
    except ValueError:
        allowed = ", ".join(repr(unit.value) for unit in DurationUnit)
        raise ValueError(
            f"invalid {field} {value!r}, expected one of {allowed}"
        ) from None


def require_date(value: object, field: str) -> date:
    """Return ``value`` unchanged if it is a calendar date, else raise ValueError.

    A datetime is rejected although it subclasses date, because comparing it with
    due dates would silently use the UTC or naive date of an instant.
    """
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValueError(
            f"invalid {field} {value!r}, expected a datetime.date "
            "(convert instants with to_site_date)"
        )
    return value


def require_whole_number(value: object, field: str, minimum: int) -> int:
    """Return ``value`` if it is an int of at least ``minimum``.

    Raises ValueError naming ``field`` otherwise. A bool is rejected although it
    subclasses int.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"invalid {field} {value!r}, expected an integer")
    if value < minimum:
        raise ValueError(f"invalid {field} {value}, must be at least {minimum}")
    return value


def add_months(start: date, months: int) -> date:
    """Add calendar months, clamping to the last day of a shorter target month.

    31 January + 1 month is 28 or 29 February, and 30 April + 1 month is 30 May.
    """
    month_index = start.year * 12 + (start.month - 1) + months
    year, month_zero_based = divmod(month_index, 12)
    month = month_zero_based + 1
    last_day = monthrange(year, month)[1]
    return date(year, month, min(start.day, last_day))


def add_duration(start: date, amount: int, unit: str | DurationUnit) -> date:
    """Add ``amount`` days, weeks or calendar months to a date.

    Months follow add_months. Raises ValueError for an unknown unit or a negative
    amount.
    """
    require_date(start, "start")
    require_whole_number(amount, "amount", 0)
    parsed_unit = parse_duration_unit(unit, "unit")

    if parsed_unit is DurationUnit.DAYS:
        return start + timedelta(days=amount)
    if parsed_unit is DurationUnit.WEEKS:
        return start + timedelta(weeks=amount)
    return add_months(start, amount)


def site_zone(timezone_string: str | None, gmt_offset: str | float | None) -> tzinfo:
    """Build the site's time zone from the WordPress options of the same names.

    A non-empty ``timezone_string`` wins. It is either an IANA name such as
    "Europe/Paris" or a manual offset such as "UTC+5.5" or "UTC-9.5". Otherwise
    ``gmt_offset`` gives the offset in hours, possibly fractional, as a number or
    a string. A missing or empty offset means UTC, as in wp_timezone_string() of
    WordPress 5.3 and later, which casts the option to float. Unlike that cast, a
    non-numeric offset raises instead of silently meaning UTC.

    Raises ValueError naming the option and value for an unknown zone name or an
    offset that is not a number of whole minutes under 24 hours.
    """
    name = (timezone_string or "").strip()
    if name:
        return _zone_from_name(name)

    if gmt_offset is None or (isinstance(gmt_offset, str) and not gmt_offset.strip()):
        return UTC
    return _fixed_offset_zone(gmt_offset, "gmt_offset")


def _zone_from_name(name: str) -> tzinfo:
    manual_offset = _MANUAL_OFFSET.fullmatch(name)
    if manual_offset:
        sign, hours = manual_offset.groups()
        return _fixed_offset_zone(sign + hours, "timezone_string")

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # The tzdata package raises IsADirectoryError for a folder name such as
        # "Europe", where the system database raises ZoneInfoNotFoundError.
        raise ValueError(
            f"unknown time zone {name!r} in timezone_string, expected an IANA "
            "name such as 'Europe/Paris' or a manual offset such as 'UTC+5.5'"
        ) from None


def _fixed_offset_zone(hours: str | float, field: str) -> timezone:
    if isinstance(hours, bool):
        raise ValueError(f"invalid {field} {hours!r}, expected hours as a number")

    # Decimal keeps 5.75 exact, so the check for whole minutes below is reliable.
    try:
        offset_hours = Decimal(str(hours).strip())
    except InvalidOperation:
        raise ValueError(
            f"invalid {field} {hours!r}, expected hours as a number such as 5.5"
        ) from None
    if not offset_hours.is_finite():
        raise ValueError(f"invalid {field} {hours!r}, expected a finite number")

    offset_minutes = offset_hours * 60
    if offset_minutes != offset_minutes.to_integral_value():
        raise ValueError(f"invalid {field} {hours!r}, must be whole minutes")
    if abs(offset_minutes) >= 24 * 60:
        raise ValueError(f"invalid {field} {hours!r}, must be under 24 hours")

    return timezone(timedelta(minutes=int(offset_minutes)))


def _require_aware(instant: datetime, field: str) -> None:
    if not isinstance(instant, datetime):
        raise ValueError(f"invalid {field} {instant!r}, expected a datetime")
    if instant.utcoffset() is None:
        raise ValueError(
            f"invalid {field} {instant!r}, expected an aware datetime, "
            "for example datetime.now(datetime.UTC)"
        )


def to_site_date(instant: datetime, zone: tzinfo) -> date:
    """Return the site's calendar date at an aware instant.

    Raises ValueError for a naive datetime, whose zone would be a guess.
    """
    _require_aware(instant, "instant")
    return instant.astimezone(zone).date()


def site_today(now: datetime, zone: tzinfo) -> date:
    """Return the site's current date, given the current aware instant ``now``."""
    _require_aware(now, "now")
    return now.astimezone(zone).date()


def site_day_start_utc(day: date, zone: tzinfo) -> datetime:
    """Return the first UTC instant at which the site's date is ``day``.

    Usually that is local midnight. Where a DST change skips midnight, as in
    America/Havana or America/Santiago, it is the instant of the change instead.
    """
    require_date(day, "day")
    midnight = datetime.combine(day, time.min, tzinfo=zone)
    earlier = midnight.replace(fold=0).astimezone(UTC)
    later = midnight.replace(fold=1).astimezone(UTC)
    low, high = min(earlier, later), max(earlier, later)
    if _site_date_reached(low, day, zone):
        return low

    # Midnight does not exist on this day. Its two readings straddle the change,
    # so search between them for the first second that belongs to ``day``.
    low_second = math.floor(low.timestamp())
    high_second = math.ceil(high.timestamp())
    while high_second - low_second > 1:
        middle_second = (low_second + high_second) // 2
        middle = datetime.fromtimestamp(middle_second, UTC)
        if _site_date_reached(middle, day, zone):
            high_second = middle_second
        else:
            low_second = middle_second
    return datetime.fromtimestamp(high_second, UTC)


def _site_date_reached(instant: datetime, day: date, zone: tzinfo) -> bool:
    return instant.astimezone(zone).date() >= day


def site_day_bounds_utc(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """Return the UTC instants [start, end) during which the site's date is ``day``.

    The end is the start of the next day, so a DST change day lasts 23 or 25 hours
    in most zones. A date that a zone skipped, such as 30 December 2011 in
    Pacific/Apia, gets an empty range.
    """
    start = site_day_start_utc(day, zone)
    end = site_day_start_utc(day + timedelta(days=1), zone)
    return start, end
