"""GET /healthz: both databases and the inbox figures."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa

from bridge.app import create_app
from bridge.db import Database, create_wordpress_engine
from bridge.health import check_health
from bridge.models import InboxEntry, InboxStatus
from sync.reader import WordPressReader
from tests.wpsite import WordPressSite

START = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)
# Nothing listens on port 1, so connecting fails at once.
CLOSED_PORT_URL = "mysql+pymysql://wp:s3cret-password@127.0.0.1:1/wordpress"


@pytest.fixture
def runtime(make_runtime, tmp_path):
    wordpress_url = f"sqlite:///{tmp_path}/wordpress.sqlite3"
    runtime = make_runtime(wordpress_url=wordpress_url, clock=lambda: START)
    WordPressSite(runtime.wordpress.engine).create_schema()
    return runtime


@pytest.fixture
def client(runtime):
    return create_app(runtime=runtime).test_client()


def add_entry(runtime, status: InboxStatus, received_at: dt.datetime) -> None:
    row = {
        "received_at": received_at,
        "event": "member-added",
        "body": "{}",
        "body_sha256": "0" * 64,
        "wp_user_id": 1,
        "status": status,
        "attempts": 0,
        "next_attempt_at": received_at,
    }
    with runtime.db.engine.begin() as connection:
        connection.execute(sa.insert(InboxEntry), row)


def test_healthy(client, runtime):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "state_db": "ok",
        "wordpress_db": "ok",
        "inbox": {"pending": 0, "failed": 0, "oldest_pending_seconds": None},
    }


def test_inbox_figures(client, runtime):
    naive = START.replace(tzinfo=None)
    add_entry(runtime, InboxStatus.PENDING, naive - dt.timedelta(seconds=90))
    add_entry(runtime, InboxStatus.PENDING, naive)
    add_entry(runtime, InboxStatus.FAILED, naive)
    add_entry(runtime, InboxStatus.DONE, naive - dt.timedelta(days=3))

    response = client.get("/healthz")

    assert response.json["inbox"] == {
        "pending": 2,
        "failed": 1,
        "oldest_pending_seconds": 90.0,
    }


def test_wordpress_not_configured(make_runtime):
    runtime = make_runtime()

    response = create_app(runtime=runtime).test_client().get("/healthz")

    assert response.status_code == 200
    assert response.json["wordpress_db"] == "not_configured"


def test_wordpress_down(client, runtime):
    engine = create_wordpress_engine(CLOSED_PORT_URL)
    runtime.wordpress_reader = WordPressReader(engine)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["state_db"] == "ok"
    assert response.json["wordpress_db"] == "unavailable"
    assert response.json["wordpress_db_error"] == "WordPressUnavailable"
    assert response.json["inbox"]["pending"] == 0
    assert b"s3cret" not in response.data
    assert b"127.0.0.1" not in response.data


def test_state_database_down(client, runtime):
    runtime.db = Database.from_url(CLOSED_PORT_URL)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json["state_db"] == "unavailable"
    assert response.json["state_db_error"] == "OperationalError"
    assert response.json["wordpress_db"] == "ok"
    assert response.json["inbox"] is None
    assert b"s3cret" not in response.data


def test_slow_database_times_out(runtime, monkeypatch):
    monkeypatch.setattr(runtime.db, "ping", lambda: time.sleep(1))

    started = time.monotonic()
    report = check_health(runtime, timeout=0.2)

    assert time.monotonic() - started < 0.9
    assert report["status"] == "unavailable"
    assert report["state_db_error"] == "TimeoutError"
    assert report["wordpress_db"] == "ok"


def test_wrong_table_prefix_is_unhealthy(make_runtime, tmp_path):
    wordpress_url = f"sqlite:///{tmp_path}/wordpress.sqlite3"
    WordPressSite(sa.create_engine(wordpress_url), prefix="wp_").create_schema()
    runtime = make_runtime(wordpress_url=wordpress_url, table_prefix="wpx_")
    response = create_app(runtime=runtime).test_client().get("/healthz")

    assert response.status_code == 503
    assert response.json["wordpress_db"] == "unavailable"
    assert response.json["wordpress_db_error"] == "MissingTables"
    assert response.json["state_db"] == "ok"
