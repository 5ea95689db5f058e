"""``coachbridge demo``: a whole coaching site on a laptop, with no configuration.

The demo builds a WordPress-shaped SQLite database of a small site: four
memberships and about 200 members with complete, refunded, expired, lifetime
and trial transactions. It loads two sample programs with cohorts and coaches,
posts sample webhooks through the real HTTP endpoint, runs a full reconcile and
prints what happened. Then it keeps serving on 127.0.0.1 until stopped, unless
``once``.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import secrets
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import click
import requests
import sqlalchemy as sa

from bridge.app import create_app
from bridge.config import config_from_mapping
from bridge.inbox import process_due
from bridge.logs import configure_logging
from bridge.migrate import upgrade
from bridge.models import Cohort, Enrollment, InboxEntry, Program
from bridge.preview import register_preview
from bridge.programs_file import load_programs_file
from bridge.reconcile import reconcile_all
from bridge.runtime import Runtime
from bridge.server import make_server
from bridge.wpsite import ZERO_DATE, NewTransaction, NewUser, WordPressSite

log = logging.getLogger(__name__)

DEMO_SEED = 2026
MEMBER_COUNT = 200
SITE_TIMEZONE = "Europe/Paris"

FIRST_NAMES = [
    "Ana", "Zoë", "José", "Łukasz", "Chloé", "Mateo", "Aiyana", "Søren", "Inès",
    "Kwame", "Yuki", "Noé", "Björn", "Amélie", "Ngozi", "Renée", "Dmitri", "Lúcia",
    "Hana", "Çağla", "Ömer", "Priya", "François", "María", "Ólafur",
]  # fmt: skip
LAST_NAMES = [
    "Lima", "Dubois", "García", "Nowak", "Müller", "Okafor", "Tanaka", "Jensen",
    "Rossi", "Łęcki", "Martín", "Núñez", "Haddad", "O'Brien", "Kowalczyk",
    "Silva", "Çelik", "Ødegård", "Fontaine", "Petrović",
]  # fmt: skip
# A few display names carry emoji, as real sites' members sometimes type them.
EMOJI = ["🌱", "💪", "🧘", "🏃", "✨"]


@dataclass(frozen=True)
class DemoSite:
    """The demo's WordPress ids that the sample programs and webhooks refer to."""

    memberships: dict[str, int]
    coaches: dict[str, int]
    admin_id: int
    members: list[int]


def run_demo(workdir: Path, port: int, once: bool) -> None:
    """Build the demo site, post webhooks, reconcile, print, then serve."""
    runtime = build_demo_runtime(workdir)
    configure_logging(runtime.config.logging)
    site = populate_wordpress(runtime, random.Random(DEMO_SEED))
    load_sample_programs(runtime, workdir, site)

    app = create_app(runtime=runtime)
    if runtime.config.demo:
        register_preview(app)
    server = make_server(app, "127.0.0.1", port)
    base_url = f"http://127.0.0.1:{server.effective_port}"
    thread = threading.Thread(target=server.run, name="demo-http", daemon=True)
    thread.start()

    try:
        deliveries = post_sample_webhooks(runtime, base_url, site)
        processed = drain_inbox(runtime)
        summary = reconcile_all(runtime)
        print_summary(runtime, base_url, deliveries, processed, summary.as_dict())
        if not once:
            serve_until_stopped(runtime, base_url)
    finally:
        server.close()
        runtime.close()


def build_demo_runtime(workdir: Path) -> Runtime:
    """Recreate the demo folder with fresh SQLite databases and secrets."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    wordpress_url = f"sqlite:///{(workdir / 'wordpress.sqlite3').resolve()}"
    config = config_from_mapping(
        {
            "state": {"database_url": f"sqlite:///{(workdir / 'state.sqlite3')}"},
            "wordpress": {"database_url": wordpress_url},
            "webhooks": {"keys": [secrets.token_urlsafe(24)]},
            "api": {"secrets": [secrets.token_urlsafe(32)]},
            "logging": {"level": "WARNING"},
        },
        source="demo",
    )
    config = config.model_copy(update={"demo": True})
    runtime = Runtime.from_config(config)
    upgrade(runtime.db.engine)
    return runtime


def populate_wordpress(runtime: Runtime, rng: random.Random) -> DemoSite:
    """Create the WordPress tables and fill them with a small membership site."""
    wordpress = WordPressSite(runtime.wordpress.engine)
    wordpress.create_schema()
    wordpress.set_option("blogname", "Demo Coaching Site")
    wordpress.set_option("timezone_string", SITE_TIMEZONE)
    wordpress.set_option("gmt_offset", "1")

    memberships = {
        "strength": wordpress.add_membership("Strength Coaching Monthly"),
        "eating": wordpress.add_membership("Mindful Eating Annual"),
        "bundle": wordpress.add_membership("Coaching Bundle Lifetime"),
        "newsletter": wordpress.add_membership("Community Newsletter"),
    }
    admin_id = wordpress.add_user(
        "siteadmin", "admin@coach.example", "Site Admin", roles=("administrator",)
    )
    coaches = {
        "maya": wordpress.add_user(
            "maya", "maya@coach.example", "Maya Okoro", "Maya", "Okoro", ("author",)
        ),
        "lars": wordpress.add_user(
            "lars", "lars@coach.example", "Lars Ødegård", "Lars", "Ødegård", ("author",)
        ),
        "ines": wordpress.add_user(
            "ines", "ines@coach.example", "Inès Fontaine", "Inès", "Fontaine"
        ),
    }
    members = wordpress.add_users(_demo_members(rng))
    wordpress.add_transactions(_demo_transactions(rng, members, memberships))
    return DemoSite(memberships, coaches, admin_id, members)


def _demo_members(rng: random.Random) -> list[NewUser]:
    users = []
    for number in range(1, MEMBER_COUNT + 1):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        display = f"{first} {last}"
        if number % 25 == 0:
            display = f"{display} {rng.choice(EMOJI)}"
        login = f"member{number:03d}"
        users.append(
            NewUser(
                login=login,
                email=f"{login}@members.example",
                display_name=display,
                first_name=first,
                last_name=last,
            )
        )
    return users


def _demo_transactions(
    rng: random.Random, members: list[int], memberships: dict[str, int]
) -> list[NewTransaction]:
    """Give each member one of the situations a real site has, in fixed shares."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    transactions = []
    for user_id in members:
        created = now - dt.timedelta(days=rng.randint(1, 60), hours=rng.randint(0, 23))
        for key, fields in _situation(rng.random(), now):
            transactions.append(
                NewTransaction(
                    user_id=user_id,
                    membership_id=memberships[key],
                    created_at=created,
                    **fields,
                )
            )
    return transactions


def _situation(roll: float, now: dt.datetime) -> list[tuple[str, dict[str, Any]]]:
    """Return (membership key, transaction fields) pairs for one member."""
    month_ahead = now + dt.timedelta(days=30)
    year_ahead = now + dt.timedelta(days=365)
    if roll < 0.35:
        return [("strength", {"expires_at": month_ahead})]
    if roll < 0.50:
        return [("eating", {"expires_at": year_ahead})]
    if roll < 0.60:
        return [("bundle", {"expires_at": ZERO_DATE})]
    if roll < 0.68:
        trial = {
            "status": "confirmed",
            "txn_type": "subscription_confirmation",
            "expires_at": now + dt.timedelta(days=7),
        }
        return [("eating", trial)]
    if roll < 0.76:
        return [("strength", {"status": "refunded", "expires_at": None})]
    if roll < 0.84:
        return [("strength", {"expires_at": now - dt.timedelta(days=200)})]
    if roll < 0.90:
        return [
            ("strength", {"expires_at": month_ahead}),
            ("eating", {"expires_at": None}),
        ]
    if roll < 0.95:
        return [("newsletter", {"expires_at": year_ahead})]
    return [("strength", {"status": "failed", "expires_at": None})]


def load_sample_programs(runtime: Runtime, workdir: Path, site: DemoSite) -> None:
    """Write the sample programs file with this site's ids and load it."""
    template = (
        resources.files("bridge")
        .joinpath("demo_programs.toml")
        .read_text(encoding="utf-8")
    )
    values = {f"membership_{key}": value for key, value in site.memberships.items()}
    values.update({f"coach_{key}": value for key, value in site.coaches.items()})
    values["fixed_start"] = (runtime.today() + dt.timedelta(days=14)).isoformat()
    path = workdir / "programs.toml"
    path.write_text(template.format(**values), encoding="utf-8")
    load_programs_file(runtime, path)


def post_sample_webhooks(runtime: Runtime, base_url: str, site: DemoSite) -> Counter:
    """Post MemberPress-shaped deliveries to the real endpoint; count the replies."""
    key = runtime.config.webhook_keys()[0]
    member = site.members[0]
    membership = site.memberships["strength"]
    bodies = [
        _transaction_body("transaction-completed", member, membership, "complete"),
        _transaction_body("transaction-completed", member, membership, "complete"),
        {"event": "login", "type": "member", "data": {"id": str(member)}},
        _transaction_body(
            "transaction-completed", site.members[1], membership, "complete"
        ),
        {"event": "some-future-event", "type": "unknown", "data": {}},
    ]
    replies: Counter = Counter()
    with requests.Session() as session:
        for body in bodies:
            response = session.post(
                f"{base_url}/webhooks/memberpress",
                json=body,
                headers={"MEMBERPRESS-WEBHOOK-KEY": key},
                timeout=10,
            )
            status = response.json().get("status", response.status_code)
            replies[f"{response.status_code} {status}"] += 1
        wrong = session.post(
            f"{base_url}/webhooks/memberpress",
            json=bodies[0],
            headers={"MEMBERPRESS-WEBHOOK-KEY": "not-the-key-0123456789"},
            timeout=10,
        )
        replies[f"{wrong.status_code} wrong key"] += 1
    return replies


def _transaction_body(event: str, member: int, membership: int, status: str) -> dict:
    return {
        "event": event,
        "type": "transaction",
        "data": {
            "id": str(900 + member),
            "status": status,
            "txn_type": "payment",
            "member": {"id": member},
            "membership": {"id": membership},
        },
    }


def drain_inbox(runtime: Runtime) -> dict[str, int]:
    """Process every due delivery now, as the scheduler would within seconds."""
    while process_due(runtime).claimed:
        pass
    with runtime.db.session() as session:
        rows = session.execute(
            sa.select(InboxEntry.status, sa.func.count()).group_by(InboxEntry.status)
        ).all()
    return {str(status): count for status, count in rows}


def print_summary(
    runtime: Runtime,
    base_url: str,
    deliveries: Counter,
    inbox: dict[str, int],
    reconcile: dict[str, object],
) -> None:
    """Print what the demo did, in plain lines."""
    echo = click.echo
    echo("coachbridge demo")
    echo(f"  WordPress (SQLite): {runtime.config.wordpress.database_url}")
    echo(f"  state (SQLite):     {runtime.config.state.database_url}")
    echo("webhook deliveries posted:")
    for reply, count in sorted(deliveries.items()):
        echo(f"  {reply}: {count}")
    echo("inbox after processing: " + _pairs(inbox))
    echo("full reconcile: " + _pairs(reconcile))
    echo("enrollments by program and cohort:")
    for program, cohort, status, count in _enrollment_counts(runtime):
        echo(f"  {program} / {cohort}: {count} {status}")


def _pairs(values: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in values.items())


def _enrollment_counts(runtime: Runtime) -> list[tuple[str, str, str, int]]:
    with runtime.db.session() as session:
        rows = session.execute(
            sa.select(Program.title, Cohort.name, Enrollment.status, sa.func.count())
            .join(Cohort, Cohort.id == Enrollment.cohort_id)
            .join(Program, Program.id == Enrollment.program_id)
            .group_by(Program.title, Cohort.name, Enrollment.status)
            .order_by(Program.title, Cohort.name, Enrollment.status)
        ).all()
    return [
        (program, cohort, str(status), count) for program, cohort, status, count in rows
    ]


def serve_until_stopped(runtime: Runtime, base_url: str) -> None:
    """Keep serving, with the scheduled jobs running, until Ctrl-C."""
    from bridge.scheduler import start_scheduler

    scheduler = start_scheduler(runtime)
    click.echo(f"serving on {base_url} (GET /healthz)")
    click.echo(f"preview: {base_url}/preview (act as any demo user in a browser)")
    click.echo("press Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        scheduler.shutdown()
