"""Pure coaching rules: dates, schedules, off-track status and progress.

Nothing in this package reads the clock, the database or the network. Callers
pass the site's today and time zone in, so the rules return the same results in the
web app, in the scheduler and in tests.
"""

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
from rules.progress import (
    DEFAULT_OFF_TRACK_THRESHOLD,
    Evaluation,
    Progress,
    evaluate_enrollment,
    is_late_tick,
    is_off_track,
    is_tick_allowed,
)
from rules.schedules import (
    HabitSchedule,
    HabitTimeline,
    MilestoneSchedule,
    ScheduleKind,
    all_due_dates,
    count_due_dates_before,
    due_dates_between,
    habit_window,
    is_due_date,
    last_due_date,
    latest_due_dates_before,
    milestone_due_date,
)

__all__ = [
    "DEFAULT_OFF_TRACK_THRESHOLD",
    "DurationUnit",
    "Evaluation",
    "HabitSchedule",
    "HabitTimeline",
    "MilestoneSchedule",
    "Progress",
    "ScheduleKind",
    "add_duration",
    "add_months",
    "all_due_dates",
    "count_due_dates_before",
    "due_dates_between",
    "evaluate_enrollment",
    "habit_window",
    "is_due_date",
    "is_late_tick",
    "is_off_track",
    "is_tick_allowed",
    "last_due_date",
    "latest_due_dates_before",
    "milestone_due_date",
    "site_day_bounds_utc",
    "site_day_start_utc",
    "site_today",
    "site_zone",
    "to_site_date",
]
