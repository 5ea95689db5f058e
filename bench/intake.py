"""Measure webhook intake under gunicorn on MariaDB.

Creates a fresh state database, starts gunicorn (gthread workers) with the app
factory on a free loopback port, and posts distinct MemberPress deliveries from
client processes with keep-alive connections for a fixed time. Then checks
that every acknowledged delivery is in the inbox with its body hash, stops
gunicorn and drops the database.

Usage::

    .venv/bin/python bench/intake.py
    .venv/bin/python bench/intake.py --seconds 20 --client-threads 8

The server comes from COACHBRIDGE_BENCH_MYSQL_URL (default
mysql+pymysql://root@127.0.0.1:3306). The database is named cb_bench_intake_*.
Results are printed as ``name: value unit`` lines.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from bridge.db import Database  # noqa: E402
from bridge.migrate import upgrade  # noqa: E402
from bridge.models import InboxEntry  # noqa: E402

DEFAULT_SERVER = "mysql+pymysql://root@127.0.0.1:3306"
KEY = "bench-webhook-key-0123456789abcdef"
PATH = "/webhooks/memberpress"
READY_TIMEOUT_SECONDS = 30
# Clients wait for this long after launch, so that every client process has
# imported its modules and all start sending at the same instant.
START_DELAY_SECONDS = 3.0


@dataclass
class ClientResult:
    """Latencies, acknowledged (inbox id, body hash) pairs and errors of a thread."""

    latencies: list[float] = field(default_factory=list)
    acknowledged: list[tuple[int, str]] = field(default_factory=list)
    errors: int = 0


def main() -> None:
    """Parse the options, run the benchmark and print the figures."""
    options = _parse_options()
    server = os.environ.get("COACHBRIDGE_BENCH_MYSQL_URL", DEFAULT_SERVER).rstrip("/")
    _metric("load_average_at_start", os.getloadavg()[0], "")

    name = f"cb_bench_intake_{uuid.uuid4().hex[:10]}"
    state_url = _create_database(server, name)
    try:
        with tempfile.TemporaryDirectory(prefix="cb-bench-") as workdir:
            _run(options, state_url, Path(workdir))
    finally:
        _drop_database(server, name)
    _metric("load_average_at_end", os.getloadavg()[0], "")


def _parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="sending time in seconds"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn worker processes"
    )
    parser.add_argument(
        "--worker-threads", type=int, default=4, help="threads per gunicorn worker"
    )
    parser.add_argument(
        "--client-processes", type=int, default=2, help="client processes"
    )
    parser.add_argument(
        "--client-threads",
        type=int,
        default=6,
        help="threads per client process, each with one keep-alive connection",
    )
    return parser.parse_args()


def _run(options: argparse.Namespace, state_url: str, workdir: Path) -> None:
    database = Database.from_url(state_url)
    upgrade(database.engine)
    config = workdir / "coachbridge.toml"
    config.write_text(f'[state]\ndatabase_url = "{state_url}"\n')

    port = _free_port()
    gunicorn = _start_gunicorn(options, config, port, workdir / "gunicorn.log")
    try:
        _wait_ready(port, gunicorn, workdir / "gunicorn.log")
        results = _send(options, port)
    finally:
        _stop(gunicorn)

    _report(options, results)
    _verify(database, results)
    database.dispose()


def _create_database(server: str, name: str) -> str:
    engine = sa.create_engine(server)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE DATABASE `{name}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        )
    engine.dispose()
    return f"{server}/{name}?charset=utf8mb4"


def _drop_database(server: str, name: str) -> None:
    engine = sa.create_engine(server)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_gunicorn(
    options: argparse.Namespace, config: Path, port: int, log_path: Path
) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--workers",
        str(options.workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(options.worker_threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "bridge.app:create_app()",
    ]
    env = {
        **os.environ,
        "COACHBRIDGE_CONFIG": str(config),
        "COACHBRIDGE_WEBHOOK_KEYS": KEY,
    }
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, cwd=REPOSITORY, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def _wait_ready(port: int, gunicorn: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if gunicorn.poll() is not None:
            raise SystemExit(f"gunicorn exited early:\n{log_path.read_text()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(
        f"gunicorn did not respond to /healthz within {READY_TIMEOUT_SECONDS}s:\n"
        f"{log_path.read_text()}"
    )


def _stop(gunicorn: subprocess.Popen) -> None:
    if gunicorn.poll() is not None:
        return
    gunicorn.send_signal(signal.SIGTERM)
    try:
        gunicorn.wait(timeout=30)
    except subprocess.TimeoutExpired:
        gunicorn.kill()
        gunicorn.wait()


def _send(options: argparse.Namespace, port: int) -> list[ClientResult]:
    start_at = time.time() + START_DELAY_SECONDS
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=options.client_processes, mp_context=context
    ) as pool:
        futures = [
            pool.submit(
                run_client,
                port,
                index,
                options.client_threads,
                start_at,
                options.seconds,
            )
            for index in range(options.client_processes)
        ]
        return [result for future in futures for result in future.result()]


def run_client(
    port: int, process_index: int, threads: int, start_at: float, seconds: float
) -> list[ClientResult]:
    """Send deliveries from ``threads`` keep-alive connections until time is up."""
    results = [ClientResult() for _ in range(threads)]
    workers = [
        threading.Thread(
            target=_send_until,
            args=(port, f"{process_index}-{index}", start_at, seconds, result),
        )
        for index, result in enumerate(results)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def _send_until(
    port: int, sender: str, start_at: float, seconds: float, result: ClientResult
) -> None:
    time.sleep(max(start_at - time.time(), 0.0))
    deadline = time.perf_counter() + seconds
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json", "MEMBERPRESS-WEBHOOK-KEY": KEY}
    sequence = 0
    while time.perf_counter() < deadline:
        sequence += 1
        body = delivery_body(sender, sequence)
        started = time.perf_counter()
        try:
            connection.request("POST", PATH, body, headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            result.errors += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        if response.status != 202:
            result.errors += 1
            continue
        result.latencies.append(time.perf_counter() - started)
        entry_id = json.loads(payload)["id"]
        result.acknowledged.append((entry_id, hashlib.sha256(body).hexdigest()))
    connection.close()


def delivery_body(sender: str, sequence: int) -> bytes:
    """Return a distinct transaction-completed body of about 680 bytes.

    It nests member, membership and subscription objects, the shape that
    sync.webhooks parses, with non-ASCII names.
    """
    member_id = 1000 + sequence % 5000
    data = {
        "id": f"{sender}-{sequence}",
        "amount": "29.00",
        "total": "29.00",
        "tax_amount": "0.00",
        "trans_num": f"ch_{sender}_{sequence}",
        "status": "complete",
        "txn_type": "payment",
        "gateway": "stripe",
        "created_at": "2025-03-10 12:00:00",
        "expires_at": "2025-04-10 23:59:59",
        "membership": {"id": "7", "title": "Monthly coaching", "price": "29.00"},
        "member": {
            "id": str(member_id),
            "email": f"member{member_id}@example.org",
            "username": f"member{member_id}",
            "first_name": "Zoë",
            "last_name": "Müller",
            "display_name": "Zoë Müller",
            "active_memberships": [{"id": "7", "title": "Monthly coaching"}],
        },
        "subscription": {"id": str(member_id), "subscr_id": f"sub_{member_id}"},
    }
    envelope = {"event": "transaction-completed", "type": "transaction", "data": data}
    return json.dumps(envelope, ensure_ascii=False).encode()


def _report(options: argparse.Namespace, results: list[ClientResult]) -> None:
    latencies = sorted(latency for r in results for latency in r.latencies)
    acknowledged = sum(len(r.acknowledged) for r in results)
    errors = sum(r.errors for r in results)
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0]

    _metric("gunicorn_workers", options.workers, "processes")
    _metric("gunicorn_threads", options.worker_threads, "per worker")
    _metric("client_connections", len(results), "keep-alive")
    _metric("duration", options.seconds, "s")
    _metric("acknowledged", acknowledged, "deliveries")
    _metric("errors", errors, "requests")
    _metric("intake_rate", acknowledged / options.seconds, "deliveries/s")
    _metric("latency_p50", cuts[min(49, len(cuts) - 1)] * 1000, "ms")
    _metric("latency_p95", cuts[min(94, len(cuts) - 1)] * 1000, "ms")
    _metric("latency_p99", cuts[min(98, len(cuts) - 1)] * 1000, "ms")


def _verify(database: Database, results: list[ClientResult]) -> None:
    inbox = InboxEntry.__table__
    with database.engine.connect() as connection:
        rows = connection.execute(sa.select(inbox.c.id, inbox.c.body_sha256)).all()
    stored = dict(rows)

    acknowledged = [pair for r in results for pair in r.acknowledged]
    missing = [
        entry_id for entry_id, digest in acknowledged if stored.get(entry_id) != digest
    ]
    _metric("verified", len(acknowledged) - len(missing), "deliveries in the inbox")
    _metric("missing", len(missing), "deliveries")
    if missing:
        raise SystemExit(f"{len(missing)} acknowledged deliveries are not stored")


def _metric(name: str, value: float, unit: str) -> None:
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    print(f"{name}: {text} {unit}".rstrip())


if __name__ == "__main__":
    main()
