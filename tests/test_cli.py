"""The ``coachbridge`` command line, run as users run it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.wpsite import WordPressSite

COMMAND = str(Path(sys.executable).parent / "coachbridge")
KEY = "cli-test-webhook-key-0123456789"

PROGRAMS = """
[[programs]]
slug = "strength"
title = "Strength"
memberships = [{membership}]

[[programs.milestones]]
title = "First push-up"
due = "2 weeks"

[[programs.cohorts]]
name = "Rolling"
coach = {coach}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def site(tmp_path):
    """A WordPress SQLite site with one coach, one membership and two members."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/wordpress.sqlite3")
    wordpress = WordPressSite(engine)
    wordpress.create_schema()
    coach = wordpress.add_user("coach", "coach@example.org", "Zoë Coach")
    membership = wordpress.add_membership("Monthly")
    buyer = wordpress.add_user("ana", "ana@example.org", "Ana Lima")
    refunded = wordpress.add_user("bo", "bo@example.org", "Bo Ek")
    wordpress.add_transaction(buyer, membership)
    wordpress.add_transaction(refunded, membership, status="refunded")
    engine.dispose()

    config = tmp_path / "coachbridge.toml"
    config.write_text(
        f'[state]\ndatabase_url = "sqlite:///{tmp_path}/state.sqlite3"\n'
        f'[wordpress]\ndatabase_url = "sqlite:///{tmp_path}/wordpress.sqlite3"\n'
        f'[webhooks]\nkeys = ["{KEY}"]\n'
        "[scheduler]\ninbox_interval_seconds = 1\n",
        encoding="utf-8",
    )
    programs = tmp_path / "programs.toml"
    programs.write_text(
        PROGRAMS.format(membership=membership, coach=coach), encoding="utf-8"
    )
    return {"config": config, "programs": programs, "buyer": buyer}


def run(*args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.pop("COACHBRIDGE_CONFIG", None)
    if config is not None:
        env["COACHBRIDGE_CONFIG"] = str(config)
    return subprocess.run(
        [COMMAND, *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_commands_before_upgrade_say_what_to_do(site):
    result = run("enrollments", config=site["config"])
    assert result.returncode == 2
    assert "run 'coachbridge db upgrade' first" in result.stderr


def test_upgrade_load_sync_list(site):
    upgraded = run("db", "upgrade", config=site["config"])
    assert upgraded.returncode == 0, upgraded.stderr
    assert "state database at revision" in upgraded.stdout

    loaded = run("programs", "load", str(site["programs"]), config=site["config"])
    assert loaded.returncode == 0, loaded.stderr

    synced = run("sync", config=site["config"])
    assert synced.returncode == 0, synced.stderr
    assert "members read: 2" in synced.stdout
    assert "enrolled: 1" in synced.stdout
    assert "errors: 0" in synced.stdout

    again = run("sync", "--json", config=site["config"])
    summary = json.loads(again.stdout)
    assert summary["members_read"] == 2
    assert summary["enrolled"] == 0

    listed = run("enrollments", "--json", config=site["config"])
    rows = json.loads(listed.stdout)
    assert [(row["wp_user_id"], row["program"], row["status"]) for row in rows] == [
        (site["buyer"], "strength", "active")
    ]


def test_invalid_config_is_reported(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[scheduler]\nreconcile_every = 5\n", encoding="utf-8")
    result = run("sync", config=config)
    assert result.returncode == 2
    assert "scheduler.reconcile_every: unknown key" in result.stderr


def test_sync_with_wordpress_down(tmp_path):
    config = tmp_path / "down.toml"
    config.write_text(
        f'[state]\ndatabase_url = "sqlite:///{tmp_path}/state.sqlite3"\n'
        "[wordpress]\n"
        'database_url = "mysql+pymysql://reader:secret-pw@127.0.0.1:1/wordpress"\n',
        encoding="utf-8",
    )
    assert run("db", "upgrade", config=config).returncode == 0
    result = run("sync", config=config)
    assert result.returncode == 3
    assert "127.0.0.1:1" in result.stderr
    assert "secret-pw" not in result.stderr
    assert "set by wordpress.database_url" in result.stderr
    assert ".;" not in result.stderr


def test_serve_enrolls_from_a_webhook(site):
    assert run("db", "upgrade", config=site["config"]).returncode == 0
    run("programs", "load", str(site["programs"]), config=site["config"])
    port = free_port()
    env = {**os.environ, "COACHBRIDGE_CONFIG": str(site["config"])}
    server = subprocess.Popen(
        [COMMAND, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, server)
        body = {
            "event": "transaction-completed",
            "type": "transaction",
            "data": {"id": "7", "member": {"id": site["buyer"]}},
        }
        reply = requests.post(
            f"{base}/webhooks/memberpress/{KEY}", json=body, timeout=5
        )
        assert reply.status_code == 202
        assert reply.json()["status"] == "queued"
        _wait_for_enrollment(site["config"])
        health = requests.get(f"{base}/healthz", timeout=5).json()
        assert health["inbox"]["pending"] == 0
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "listening on http://127.0.0.1" in output


def _wait_healthy(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stdout.read()
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("coachbridge serve did not become healthy in 30 s")


def _wait_for_enrollment(config: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = json.loads(run("enrollments", "--json", config=config).stdout)
        if rows:
            assert rows[0]["status"] == "active"
            return
        time.sleep(0.5)
    raise AssertionError("the scheduler did not process the webhook in 30 s")


def test_demo_keeps_a_folder_with_other_files(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.txt").write_text("months of work", encoding="utf-8")

    result = run("demo", "--once", "--port", "0", "--dir", str(folder))

    assert result.returncode == 2
    assert "thesis.txt" in result.stderr
    assert "Traceback" not in result.stderr
    assert (folder / "thesis.txt").read_text(encoding="utf-8") == "months of work"


def test_demo_reuses_its_own_folder(tmp_path):
    folder = tmp_path / "demo"

    first = run("demo", "--once", "--port", "0", "--dir", str(folder))
    second = run("demo", "--once", "--port", "0", "--dir", str(folder))

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr


def test_serve_on_a_busy_port(site):
    assert run("db", "upgrade", config=site["config"]).returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run("serve", "--port", str(port), config=site["config"])

    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr
    assert "address already in use" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_demo_on_a_busy_port(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run(
            "demo", "--once", "--port", str(port), "--dir", str(tmp_path / "d")
        )

    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_state_database_cannot_be_opened(tmp_path):
    config = tmp_path / "coachbridge.toml"
    config.write_text(
        f'[state]\ndatabase_url = "sqlite:///{tmp_path}/missing/state.sqlite3"\n',
        encoding="utf-8",
    )

    for command in (["enrollments"], ["db", "upgrade"]):
        result = run(*command, config=config)

        assert result.returncode == 2, command
        assert "state database" in result.stderr, command
        assert "state.database_url" in result.stderr, command
        assert "Traceback" not in result.stderr, command


def test_sync_with_wrong_table_prefix(site):
    config = site["config"]
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[wordpress]\n", '[wordpress]\ntable_prefix = "wrong_"\n'
        ),
        encoding="utf-8",
    )
    assert run("db", "upgrade", config=config).returncode == 0

    for command in (["sync"], ["programs", "load", str(site["programs"])]):
        result = run(*command, config=config)

        assert result.returncode == 2, command
        assert "wrong_mepr_transactions" in result.stderr, command
        assert "wordpress.table_prefix" in result.stderr, command
        assert "Traceback" not in result.stderr, command


def test_commands_print_no_alembic_chatter(site):
    upgraded = run("db", "upgrade", config=site["config"])
    listed = run("enrollments", config=site["config"])

    assert "state database at revision" in upgraded.stdout
    assert "alembic" not in upgraded.stderr
    assert listed.stderr == ""


def test_demo_rejects_the_working_directory(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()

    result = subprocess.run(
        [COMMAND, "demo", "--once", "--port", "0", "--dir", "."],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=120,
    )

    assert result.returncode == 2
    assert "working directory" in result.stderr
    assert "Traceback" not in result.stderr
    assert folder.is_dir()


@pytest.mark.parametrize(
    "command, port, allowed",
    [
        ("serve", "70001", "1<=x<=65535"),
        ("serve", "0", "1<=x<=65535"),
        ("demo", "70000", "0<=x<=65535"),
        ("demo", "-5", "0<=x<=65535"),
    ],
)
def test_port_out_of_range_rejected(command, port, allowed):
    result = run(command, "--port", port)

    assert result.returncode == 2
    assert "Invalid value for '--port'" in result.stderr
    assert allowed in result.stderr
