"""Scheduled jobs: the full reconcile, inbox processing and nightly evaluation.

Every web process may run a scheduler. Interval jobs fire on the same instants
in every process because their trigger counts from a fixed UTC epoch, and each
run first takes the job's lease in the state database (bridge.locks). So each
tick runs once per deployment, in whichever process gets the lease first.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import time
from collections.abc import Callable

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bridge.inbox import ProcessCounts, process_due
from bridge.locks import job_lock, naive_utc
from bridge.reconcile import reconcile_all
from bridge.runtime import Runtime

log = logging.getLogger(__name__)

RECONCILE_JOB = "reconcile"
INBOX_JOB = "inbox"
EVALUATION_JOB = "evaluation"

# Interval ticks count from this instant, so that every process computes the
# same fire times and the same tick for a run.
TICK_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

Evaluate = Callable[[Runtime], object]


def start_scheduler(runtime: Runtime) -> BackgroundScheduler:
    """Build the scheduler with its jobs and start it in a background thread."""
    scheduler = build_scheduler(runtime)
    scheduler.start()
    for job in scheduler.get_jobs():
        log.info("scheduled job %s, next run at %s", job.id, job.next_run_time)
    return scheduler


def build_scheduler(runtime: Runtime) -> BackgroundScheduler:
    """Create the (not yet started) scheduler and add the jobs, in UTC."""
    settings = runtime.config.scheduler
    scheduler = BackgroundScheduler(
        timezone=dt.UTC,
        job_defaults={
            "coalesce": True,
            "misfire_grace_time": settings.misfire_grace_seconds,
            "max_instances": 1,
        },
    )
    scheduler.add_listener(
        log_job_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES
    )

    reconcile_seconds = settings.reconcile_interval_minutes * 60
    scheduler.add_job(
        run_reconcile,
        _aligned_interval(reconcile_seconds),
        args=[runtime],
        id=RECONCILE_JOB,
        name="full reconcile",
    )
    scheduler.add_job(
        run_inbox,
        _aligned_interval(settings.inbox_interval_seconds),
        args=[runtime],
        id=INBOX_JOB,
        name="inbox processing",
    )
    _add_evaluation_job(scheduler, runtime)
    return scheduler


def _aligned_interval(seconds: int) -> IntervalTrigger:
    return IntervalTrigger(seconds=seconds, start_date=TICK_EPOCH, timezone=dt.UTC)


def _add_evaluation_job(scheduler: BackgroundScheduler, runtime: Runtime) -> None:
    evaluate = load_evaluation()
    if evaluate is None:
        log.debug("nightly evaluation not scheduled: bridge.evaluation is missing")
        return

    scheduler.add_job(
        run_evaluation,
        SiteMidnightTrigger(runtime),
        args=[runtime, evaluate],
        id=EVALUATION_JOB,
        name="nightly evaluation",
    )


def load_evaluation() -> Evaluate | None:
    """Return ``bridge.evaluation.evaluate_all``, or None if that module is absent."""
    try:
        module = importlib.import_module("bridge.evaluation")
    except ModuleNotFoundError as error:
        # A missing dependency inside the module is a real error, not absence.
        if error.name != "bridge.evaluation":
            raise
        return None
    return module.evaluate_all


def log_job_event(event: JobExecutionEvent | JobSubmissionEvent) -> None:
    """Log a missed run, a run skipped while the previous one ran, or a failure."""
    if event.code == EVENT_JOB_MISSED:
        log.warning(
            "job %s missed its run at %s by more than "
            "scheduler.misfire_grace_seconds, so that run was skipped",
            event.job_id,
            event.scheduled_run_time,
        )
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        log.warning(
            "job %s was still running at its next run time, so that run was skipped",
            event.job_id,
        )
    elif event.code == EVENT_JOB_ERROR:
        # APScheduler 3 logs the traceback itself (apscheduler.executors).
        log.error(
            "job %s failed in its run of %s: %s: %s",
            event.job_id,
            event.scheduled_run_time,
            type(event.exception).__name__,
            event.exception,
        )


def interval_tick(now: dt.datetime, seconds: int) -> dt.datetime:
    """Return the start of the interval containing ``now``, as naive UTC."""
    elapsed = int((now - TICK_EPOCH).total_seconds())
    start = TICK_EPOCH + dt.timedelta(seconds=elapsed - elapsed % seconds)
    return naive_utc(start)


def run_reconcile(runtime: Runtime) -> None:
    """Reconcile every member with WordPress, once per tick across processes."""
    interval = runtime.config.scheduler.reconcile_interval_minutes * 60
    tick = interval_tick(runtime.now(), interval)
    with job_lock(runtime, RECONCILE_JOB, tick) as lease:
        if lease is None:
            log.debug("full reconcile tick %s runs elsewhere or already ran", tick)
            return

        log.info("full reconcile started for tick %s", tick)
        started = time.monotonic()
        summary = reconcile_all(runtime)
        log.info(
            "full reconcile finished in %.1fs: %s",
            time.monotonic() - started,
            _figures(summary.as_dict()),
        )


def run_inbox(runtime: Runtime) -> None:
    """Process due inbox entries until none is due or WordPress is unavailable."""
    tick = interval_tick(runtime.now(), runtime.config.scheduler.inbox_interval_seconds)
    with job_lock(runtime, INBOX_JOB, tick) as lease:
        if lease is None:
            log.debug("inbox tick %s runs elsewhere or already ran", tick)
            return

        log.debug("inbox processing started for tick %s", tick)
        started = time.monotonic()
        totals = drain_inbox(runtime)
        if totals.claimed == 0:
            log.debug("inbox processing found nothing due")
            return

        log.info(
            "inbox processing finished in %.1fs: %s",
            time.monotonic() - started,
            _figures(totals.as_dict()),
        )


def drain_inbox(runtime: Runtime) -> ProcessCounts:
    """Call process_due until nothing is due; return the summed counts."""
    totals = ProcessCounts()
    while True:
        counts = process_due(runtime)
        totals.add(counts)
        # Failed entries are deferred, so this loop does not claim them again.
        # Once WordPress was unavailable, the entries not yet claimed wait for
        # a later tick instead of each waiting for a connection timeout.
        if counts.claimed == 0 or counts.wordpress_unavailable:
            return totals


def run_evaluation(runtime: Runtime, evaluate: Evaluate) -> None:
    """Run the nightly evaluation once per site-local day across processes."""
    zone = runtime.site_zone()
    delay = dt.timedelta(minutes=runtime.config.scheduler.evaluate_delay_minutes)
    tick = naive_utc(previous_evaluation_time(runtime.now(), zone, delay))
    with job_lock(runtime, EVALUATION_JOB, tick) as lease:
        if lease is None:
            log.debug("nightly evaluation of %s runs elsewhere or already ran", tick)
            return

        log.info("nightly evaluation started for tick %s", tick)
        started = time.monotonic()
        result = evaluate(runtime)
        log.info(
            "nightly evaluation finished in %.1fs: %s",
            time.monotonic() - started,
            _describe_result(result),
        )


def _describe_result(result: object) -> str:
    as_dict = getattr(result, "as_dict", None)
    if callable(as_dict):
        return _figures(as_dict())
    return repr(result)


def _figures(values: dict[str, object]) -> str:
    return ", ".join(f"{name}={value}" for name, value in values.items())


def site_midnight(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    """Return the first instant of a site-local day, aware in UTC.

    Where the clocks jump forward at midnight, local midnight does not exist.
    fold=0 then reads it with the offset before the jump, which gives the
    instant of the jump, when the local day begins.
    """
    local = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    return local.astimezone(dt.UTC)


def next_site_midnight(after: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """Return the first site-local midnight strictly after ``after``, in UTC."""
    day = after.astimezone(zone).date()
    midnight = site_midnight(day, zone)
    while midnight <= after:
        day += dt.timedelta(days=1)
        midnight = site_midnight(day, zone)
    return midnight


def next_evaluation_time(
    after: dt.datetime, zone: dt.tzinfo, delay: dt.timedelta
) -> dt.datetime:
    """Return the first ``site midnight + delay`` strictly after ``after``, in UTC."""
    day = after.astimezone(zone).date() - dt.timedelta(days=1)
    while True:
        candidate = site_midnight(day, zone) + delay
        if candidate > after:
            return candidate
        day += dt.timedelta(days=1)


def previous_evaluation_time(
    at: dt.datetime, zone: dt.tzinfo, delay: dt.timedelta
) -> dt.datetime:
    """Return the last ``site midnight + delay`` at or before ``at``, in UTC."""
    day = at.astimezone(zone).date() + dt.timedelta(days=1)
    while True:
        candidate = site_midnight(day, zone) + delay
        if candidate <= at:
            return candidate
        day -= dt.timedelta(days=1)


class SiteMidnightTrigger(BaseTrigger):
    """Fire evaluate_delay_minutes after each site-local midnight.

    The zone is read from the runtime at each computation, so a change of the
    site's time zone in WordPress applies from the next run on.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.zone: dt.tzinfo = dt.UTC

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime:
        """Return the next evaluation time after the previous one (or after now)."""
        delay = dt.timedelta(
            minutes=self.runtime.config.scheduler.evaluate_delay_minutes
        )
        self.zone = self._site_zone()
        return next_evaluation_time(previous_fire_time or now, self.zone, delay)

    def _site_zone(self) -> dt.tzinfo:
        try:
            return self.runtime.site_zone()
        except Exception as error:
            log.warning(
                "could not read the site time zone for the nightly evaluation, "
                "keeping %s: %s: %s",
                self.zone,
                type(error).__name__,
                error,
            )
            return self.zone

    def __str__(self) -> str:
        return "site midnight"
