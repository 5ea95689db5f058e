"""Faults on MariaDB with the real reconcile: WordPress down, server killed.

Both tests build a WordPress site and a state database on the MariaDB server,
a program granted by one membership, and members who bought it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from bridge import db as db_module
from bridge import scheduler
from bridge.app import create_app
from bridge.db import create_wordpress_engine
from bridge.models import (
    Coach,
    Cohort,
    CohortKind,
    Enrollment,
    EnrollmentStatus,
    InboxEntry,
    InboxStatus,
    Program,
    ProgramMembership,
)
from sync.reader import WordPressReader, WordPressUnavailable
from tests.test_webhooks import KEY, transaction_body
from tests.wpsite import NewTransaction, NewUser, WordPressSite

pytestmark = pytest.mark.mariadb

REPOSITORY = Path(__file__).resolve().parent.parent
# Nothing listens on port 1 of the loopback, so connecting is refused at once.
CLOSED_PORT_URL = "mysql+pymysql://root@127.0.0.1:1/wordpress"


class Clock:
    """A settable clock for the runtime, starting at the real time."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Stack:
    site: WordPressSite
    runtime: object
    clock: Clock
    membership_id: int
    program_id: int
    state_url: str
    wordpress_url: str

    def add_members(self, count: int) -> list[int]:
        users = [
            NewUser(f"member{index}", f"member{index}@example.org", f"Zoë {index}")
            for index in range(count)
        ]
        ids = self.site.add_users(users)
        self.site.add_transactions(
            NewTransaction(user_id=user_id, membership_id=self.membership_id)
            for user_id in ids
        )
        return ids

    def active_enrollments(self) -> dict[int, int]:
        """Map each member id to their number of active enrollments."""
        query = (
            sa.select(Enrollment.wp_user_id, sa.func.count())
            .where(Enrollment.status == EnrollmentStatus.ACTIVE)
            .group_by(Enrollment.wp_user_id)
        )
        with self.runtime.db.session() as session:
            return dict(session.execute(query).all())

    def inbox(self) -> list[InboxEntry]:
        with self.runtime.db.session() as session:
            query = sa.select(InboxEntry).order_by(InboxEntry.id)
            return list(session.scalars(query))


@pytest.fixture
def stack(mysql_database_factory, make_runtime, request) -> Stack:
    wordpress_url = mysql_database_factory("wp")
    state_url = mysql_database_factory("state")
    engine = sa.create_engine(wordpress_url)
    request.addfinalizer(engine.dispose)
    site = WordPressSite(engine)
    site.create_schema()
    coach_id = site.add_user("coach", "coach@example.org", "Coach")
    membership_id = site.add_membership("Monthly coaching")

    clock = Clock()
    runtime = make_runtime(
        state_url=state_url,
        wordpress_url=wordpress_url,
        clock=clock,
        rng=random.Random(5),
        webhooks={"keys": [KEY], "retry_base_seconds": 30, "retry_max_seconds": 300},
    )
    program_id = add_program(runtime, membership_id, coach_id)
    return Stack(
        site, runtime, clock, membership_id, program_id, state_url, wordpress_url
    )


def add_program(runtime, membership_id: int, coach_wp_user_id: int) -> int:
    with runtime.db.session() as session:
        coach = Coach(wp_user_id=coach_wp_user_id, display_name="Coach")
        program = Program(slug="strength", title="Strength")
        program.memberships = [ProgramMembership(membership_id=membership_id)]
        session.add_all([coach, program])
        session.flush()
        session.add(
            Cohort(
                program_id=program.id,
                name="Everyone",
                kind=CohortKind.ROLLING,
                coach_id=coach.id,
            )
        )
        return program.id


# WordPress unreachable while deliveries arrive.


def test_deliveries_wait_for_wordpress(stack):
    runtime, clock = stack.runtime, stack.clock
    members = stack.add_members(5)
    client = create_app(runtime=runtime).test_client()
    reachable = runtime.wordpress_reader
    runtime.wordpress_reader = WordPressReader(create_wordpress_engine(CLOSED_PORT_URL))

    for index, member in enumerate(members):
        response = client.post(
            "/webhooks/memberpress",
            data=transaction_body(member, transaction_id=index + 1),
            headers={"MEMBERPRESS-WEBHOOK-KEY": KEY},
        )
        assert response.status_code == 202
        assert response.json["status"] == "queued"

    scheduler.run_inbox(runtime)
    health = client.get("/healthz")

    assert stack.active_enrollments() == {}
    entries = stack.inbox()
    assert [entry.status for entry in entries] == [InboxStatus.PENDING] * 5
    assert [entry.attempts for entry in entries] == [1] * 5
    assert all(e.last_error.startswith("WordPressUnavailable") for e in entries)
    assert health.status_code == 503
    assert health.json["wordpress_db"] == "unavailable"
    assert health.json["inbox"]["pending"] == 5

    # Backoff: nothing is due ten seconds later, but is after the base delay.
    clock.advance(seconds=10)
    scheduler.run_inbox(runtime)
    assert [entry.attempts for entry in stack.inbox()] == [1] * 5
    clock.advance(seconds=30)
    scheduler.run_inbox(runtime)
    assert [entry.attempts for entry in stack.inbox()] == [2] * 5
    assert stack.active_enrollments() == {}

    runtime.wordpress_reader.engine.dispose()
    runtime.wordpress_reader = reachable
    clock.advance(seconds=30)
    scheduler.run_inbox(runtime)
    assert stack.active_enrollments() == {}, "applied before the backoff elapsed"
    clock.advance(seconds=60)
    scheduler.run_inbox(runtime)

    assert stack.active_enrollments() == {member: 1 for member in members}
    entries = stack.inbox()
    assert [entry.status for entry in entries] == [InboxStatus.DONE] * 5
    assert [entry.attempts for entry in entries] == [2] * 5
    assert client.get("/healthz").json["inbox"]["pending"] == 0


# The server killed in the middle of a burst.


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(path: Path, stack: Stack) -> Path:
    path.write_text(
        f'[state]\ndatabase_url = "{stack.state_url}"\n'
        f'[wordpress]\ndatabase_url = "{stack.wordpress_url}"\n'
        f'[webhooks]\nkeys = ["{KEY}"]\n'
    )
    return path


class Server:
    """The app under waitress in a child process, restartable on one port."""

    def __init__(self, config: Path, port: int, log_path: Path) -> None:
        self.config = config
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            str(Path(sys.executable).parent / "waitress-serve"),
            f"--listen=127.0.0.1:{self.port}",
            "--threads=8",
            "--call",
            "bridge.app:create_app",
        ]
        env = {**os.environ, "COACHBRIDGE_CONFIG": str(self.config)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPOSITORY, env=env, stdout=log, stderr=log
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"server did not start: {self.log_path.read_text()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def test_server_killed_mid_burst(stack, tmp_path):
    total = 240
    members = stack.add_members(total)
    bodies = [
        transaction_body(member, transaction_id=index + 1)
        for index, member in enumerate(members)
    ]
    config = write_config(tmp_path / "coachbridge.toml", stack)
    server = Server(config, free_port(), tmp_path / "server.log")
    server.start()

    acknowledged: dict[int, int] = {}
    connection_errors = []
    lock = threading.Lock()
    restarted = threading.Event()
    acknowledged_after_restart = []

    def deliver(indexes: list[int]) -> None:
        # Each sender retries a delivery until it gets a 2xx.
        session = requests.Session()
        for index in indexes:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    response = session.post(
                        f"{server.url}/webhooks/memberpress",
                        data=bodies[index],
                        headers={"MEMBERPRESS-WEBHOOK-KEY": KEY},
                        timeout=5,
                    )
                except requests.RequestException:
                    # Refused, reset, or cut off mid-response by the kill: the
                    # sender cannot know whether the delivery was stored, so
                    # it sends it again, as MemberPress does.
                    with lock:
                        connection_errors.append(index)
                    session = requests.Session()
                    time.sleep(0.05)
                    continue
                if response.status_code == 202:
                    with lock:
                        acknowledged[index] = response.json()["id"]
                        if restarted.is_set():
                            acknowledged_after_restart.append(index)
                    break
                time.sleep(0.05)

    senders = [
        threading.Thread(target=deliver, args=(list(range(start, total, 6)),))
        for start in range(6)
    ]
    try:
        for sender in senders:
            sender.start()
        assert_eventually(lambda: len(acknowledged) >= total // 4)
        server.kill()
        killed_at = len(acknowledged)
        time.sleep(0.3)
        server.start()
        restarted.set()
        for sender in senders:
            sender.join(timeout=90)
    finally:
        server.kill()

    assert killed_at < total, "the burst ended before the kill"
    assert connection_errors, "no sender saw the server go away"
    assert acknowledged_after_restart, "no delivery was acknowledged after restart"
    assert len(acknowledged) == total

    stored = {entry.id: entry for entry in stack.inbox()}
    for index, entry_id in acknowledged.items():
        assert entry_id in stored, f"acknowledged delivery {index} was lost"
        digest = hashlib.sha256(bodies[index]).hexdigest()
        assert stored[entry_id].body_sha256 == digest

    # The server stored the entries at the real time, after the test's clock.
    stack.clock.now = dt.datetime.now(dt.UTC)
    totals = scheduler.drain_inbox(stack.runtime)

    assert totals.failed == 0
    assert stack.active_enrollments() == {member: 1 for member in members}
    statuses = {entry.status for entry in stack.inbox()}
    assert statuses <= {InboxStatus.DONE, InboxStatus.DUPLICATE}


def assert_eventually(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_silent_wordpress_server_times_out(monkeypatch):
    # A server that accepts connections and never responds, as a stuck proxy
    # or firewall might.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    accepted = []

    def accept_forever() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    threading.Thread(target=accept_forever, daemon=True).start()
    monkeypatch.setattr(db_module, "WORDPRESS_READ_TIMEOUT_SECONDS", 1)
    engine = create_wordpress_engine(f"mysql+pymysql://root@127.0.0.1:{port}/wp")
    reader = WordPressReader(engine)
    started = time.monotonic()
    try:
        with pytest.raises(WordPressUnavailable):
            reader.access(1, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    finally:
        engine.dispose()
        listener.close()
        for connection in accepted:
            connection.close()

    assert time.monotonic() - started < 20
    assert accepted
