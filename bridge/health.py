"""``GET /healthz``: reachability of both databases and the inbox backlog.

The response names only the class of a failure, never its message, because
driver messages can include host names and URLs.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from bridge.app import get_runtime
from bridge.inbox import InboxStats, inbox_stats
from bridge.runtime import Runtime
from sync.reader import WordPressReader

log = logging.getLogger(__name__)

# Both checks run in parallel and the response waits at most this long, well
# under the usual probe timeouts of load balancers and orchestrators.
CHECK_TIMEOUT_SECONDS = 3.0

health_blueprint = Blueprint("health", __name__)


@health_blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Report 200 when both databases respond, else 503 naming the failing one."""
    runtime = get_runtime(current_app)
    report = check_health(runtime)
    status = 200 if report["status"] == "ok" else 503
    return jsonify(report), status


def check_health(
    runtime: Runtime, timeout: float = CHECK_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Ping the state and WordPress databases and read the inbox figures."""
    executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=2, thread_name_prefix="healthz"
    )
    state = executor.submit(_check_state, runtime)
    wordpress = None
    if runtime.wordpress_reader is not None:
        wordpress = executor.submit(_check_wordpress, runtime.wordpress_reader)
    # A check that times out keeps running in its thread until the driver's own
    # timeout ends it, but the response does not wait for it.
    executor.shutdown(wait=False)
    deadline = time.monotonic() + timeout

    report: dict[str, Any] = {"status": "ok"}
    stats, state_error = _outcome(state, deadline)
    _add_check(report, "state_db", state_error)
    if wordpress is None:
        report["wordpress_db"] = "not_configured"
    else:
        _, wordpress_error = _outcome(wordpress, deadline)
        _add_check(report, "wordpress_db", wordpress_error)
    report["inbox"] = _inbox_figures(stats)
    return report


class MissingTables(Exception):
    """Raised when the WordPress database lacks a table, as with a wrong prefix."""


def _check_wordpress(reader: WordPressReader) -> None:
    missing = reader.missing_tables()
    if missing:
        raise MissingTables(", ".join(missing))


def _check_state(runtime: Runtime) -> InboxStats:
    runtime.db.ping()
    return inbox_stats(runtime)


def _outcome(
    future: concurrent.futures.Future, deadline: float
) -> tuple[Any, str | None]:
    """Return (result, None) or (None, error class name) within the deadline."""
    try:
        return future.result(timeout=max(deadline - time.monotonic(), 0.0)), None
    except concurrent.futures.TimeoutError:
        return None, "TimeoutError"
    except Exception as error:
        return None, type(error).__name__


def _add_check(report: dict[str, Any], name: str, error: str | None) -> None:
    if error is None:
        report[name] = "ok"
        return

    report["status"] = "unavailable"
    report[name] = "unavailable"
    report[f"{name}_error"] = error
    log.warning("health check: %s is unavailable (%s)", name, error)


def _inbox_figures(stats: InboxStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    oldest = stats.oldest_pending_seconds
    return {
        "pending": stats.counts["pending"],
        "failed": stats.counts["failed"],
        "oldest_pending_seconds": None if oldest is None else round(oldest, 1),
    }
