"""WordPressReader on SQLite and on MariaDB with the real WordPress DDL."""

from __future__ import annotations

import datetime as dt
import itertools
import logging

import pytest
import sqlalchemy as sa

from sync import reader as reader_module
from sync.reader import (
    Grant,
    Membership,
    SiteTime,
    WordPressReader,
    WordPressUnavailable,
    grants_access,
)
from sync.schema import ZERO_DATE
from tests.wpsite import NewTransaction, NewUser, WordPressSite

NOW = dt.datetime(2026, 3, 15, 12, 0, 0)
FUTURE = dt.datetime(2026, 4, 15, 23, 59, 59)
PAST = dt.datetime(2026, 2, 15, 23, 59, 59)


class QueryCounter:
    """Count the statements an engine runs while the counter is attached."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.count = 0

    def __enter__(self) -> QueryCounter:
        sa.event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, *args: object) -> None:
        self.count += 1


@pytest.fixture
def reader(site: WordPressSite) -> WordPressReader:
    return WordPressReader(site.engine)


ACCESS_CASES = {
    "zero-date-expiry": ("complete", "payment", ZERO_DATE, True),
    "null-expiry": ("complete", "payment", None, True),
    "future-expiry": ("complete", "payment", FUTURE, True),
    "past-expiry": ("complete", "payment", PAST, False),
    "expiring-now": ("complete", "payment", NOW, False),
    "confirmed-trial": ("confirmed", "subscription_confirmation", FUTURE, True),
    "confirmed-trial-lifetime": ("confirmed", "subscription_confirmation", None, True),
    "confirmed-payment": ("confirmed", "payment", FUTURE, False),
    "complete-subscription-confirmation": (
        "complete",
        "subscription_confirmation",
        FUTURE,
        True,
    ),
    "refunded": ("refunded", "payment", FUTURE, False),
    "refunded-lifetime": ("refunded", "payment", ZERO_DATE, False),
    "failed": ("failed", "payment", FUTURE, False),
    "pending": ("pending", "payment", FUTURE, False),
    "pending-trial": ("pending", "subscription_confirmation", FUTURE, False),
}


def numbered_users(count: int) -> list[NewUser]:
    return [
        NewUser(f"member{number}", f"member{number}@example.org")
        for number in range(count)
    ]


@pytest.mark.parametrize("case", ACCESS_CASES)
def test_access_case(site, reader, case):
    status, txn_type, expires_at, expected = ACCESS_CASES[case]
    user_id = site.add_user("ana", "ana@example.org")
    membership_id = site.add_membership("Monthly")
    transaction_id = site.add_transaction(
        user_id, membership_id, status=status, txn_type=txn_type, expires_at=expires_at
    )

    grants = reader.access(user_id, NOW)

    assert grants_access(status, txn_type, expires_at, NOW) is expected
    if expected:
        lifetime = expires_at is None or expires_at == ZERO_DATE
        assert grants == {
            membership_id: Grant(
                membership_id, transaction_id, None if lifetime else expires_at
            )
        }
    else:
        assert grants == {}


def test_access_two_memberships(site, reader):
    user_id = site.add_user("ana", "ana@example.org")
    monthly = site.add_membership("Monthly")
    yearly = site.add_membership("Yearly")
    first = site.add_transaction(user_id, monthly, expires_at=FUTURE)
    second = site.add_transaction(user_id, yearly, expires_at=ZERO_DATE)

    grants = reader.access(user_id, NOW)

    assert grants == {
        monthly: Grant(monthly, first, FUTURE),
        yearly: Grant(yearly, second, None),
    }


def test_access_ignores_other_users(site, reader):
    ana = site.add_user("ana", "ana@example.org")
    bruno = site.add_user("bruno", "bruno@example.org")
    monthly = site.add_membership("Monthly")
    site.add_transaction(bruno, monthly, expires_at=FUTURE)

    assert reader.access(ana, NOW) == {}
    assert reader.access(987654, NOW) == {}


def test_access_after_refund(site, reader):
    user_id = site.add_user("ana", "ana@example.org")
    monthly = site.add_membership("Monthly")
    transaction_id = site.add_transaction(user_id, monthly, expires_at=FUTURE)
    assert monthly in reader.access(user_id, NOW)

    site.set_transaction_status(transaction_id, "refunded")

    assert reader.access(user_id, NOW) == {}


def test_access_accepts_aware_now(site, reader):
    user_id = site.add_user("ana", "ana@example.org")
    monthly = site.add_membership("Monthly")
    expires_at = dt.datetime(2026, 3, 15, 12, 30)
    site.add_transaction(user_id, monthly, expires_at=expires_at)
    lisbon_summer = dt.timezone(dt.timedelta(hours=1))

    # 13:15 at UTC+1 is 12:15 UTC, before the expiry.
    before = dt.datetime(2026, 3, 15, 13, 15, tzinfo=lisbon_summer)
    after = dt.datetime(2026, 3, 15, 12, 45, tzinfo=dt.UTC)

    assert monthly in reader.access(user_id, before)
    assert reader.access(user_id, after) == {}


def test_grant_choice_prefers_lifetime(site, reader):
    user_id = site.add_user("ana", "ana@example.org")
    monthly = site.add_membership("Monthly")
    lifetime = site.add_transaction(user_id, monthly, expires_at=ZERO_DATE)
    site.add_transaction(user_id, monthly, expires_at=dt.datetime(2099, 1, 1))

    assert reader.access(user_id, NOW)[monthly].transaction_id == lifetime


def test_grant_choice_prefers_latest_expiry(site, reader):
    user_id = site.add_user("ana", "ana@example.org")
    monthly = site.add_membership("Monthly")
    later = site.add_transaction(user_id, monthly, expires_at=dt.datetime(2027, 1, 1))
    site.add_transaction(user_id, monthly, expires_at=FUTURE)

    grant = reader.access(user_id, NOW)[monthly]

    assert grant.transaction_id == later
    assert grant.expires_at == dt.datetime(2027, 1, 1)


def test_grant_choice_tie_takes_highest_id(site, reader):
    user_id = site.add_user("ana", "ana@example.org")
    monthly = site.add_membership("Monthly")
    yearly = site.add_membership("Yearly")
    site.add_transaction(user_id, monthly, expires_at=FUTURE)
    highest_dated = site.add_transaction(user_id, monthly, expires_at=FUTURE)
    site.add_transaction(user_id, yearly, expires_at=None)
    highest_lifetime = site.add_transaction(user_id, yearly, expires_at=ZERO_DATE)

    grants = reader.access(user_id, NOW)

    assert grants[monthly].transaction_id == highest_dated
    assert grants[yearly].transaction_id == highest_lifetime


def test_grant_choice_skips_non_granting_rows(site, reader):
    user_id = site.add_user("ana", "ana@example.org")
    monthly = site.add_membership("Monthly")
    granting = site.add_transaction(user_id, monthly, expires_at=FUTURE)
    site.add_transaction(user_id, monthly, status="refunded", expires_at=ZERO_DATE)
    site.add_transaction(user_id, monthly, status="pending", expires_at=None)

    assert reader.access(user_id, NOW)[monthly].transaction_id == granting


STATUSES = ["complete", "confirmed", "pending", "refunded", "failed"]
TXN_TYPES = ["payment", "subscription_confirmation", "sub_account", "manual"]
EXPIRIES = [
    None,
    ZERO_DATE,
    PAST,
    NOW - dt.timedelta(seconds=1),
    NOW,
    NOW + dt.timedelta(seconds=1),
    FUTURE,
]


def test_sql_rule_matches_grants_access(site, reader):
    membership_id = site.add_membership("Monthly")
    combinations = list(itertools.product(STATUSES, TXN_TYPES, EXPIRIES))
    user_ids = site.add_users(numbered_users(len(combinations)))
    site.add_transactions(
        NewTransaction(
            user_id,
            membership_id,
            status=status,
            txn_type=txn_type,
            expires_at=expires_at,
        )
        for user_id, (status, txn_type, expires_at) in zip(
            user_ids, combinations, strict=True
        )
    )

    granted = {}
    for batch in reader.iter_access(NOW, batch_size=50):
        granted.update(batch)

    assert len(granted) == len(combinations)
    for user_id, (status, txn_type, expires_at) in zip(
        user_ids, combinations, strict=True
    ):
        expected = grants_access(status, txn_type, expires_at, NOW)
        case = f"{status}/{txn_type}/{expires_at}"
        assert (membership_id in granted[user_id]) is expected, case


def test_iter_access_visits_every_member_once(site, reader):
    monthly = site.add_membership("Monthly")
    yearly = site.add_membership("Yearly")
    users = site.add_users(numbered_users(9))
    no_transactions = users[0]
    refunded_only = users[3]
    for user_id in users[1:]:
        status = "refunded" if user_id == refunded_only else "complete"
        site.add_transaction(user_id, monthly, status=status, expires_at=FUTURE)
    site.add_transaction(users[5], yearly, expires_at=None)

    with QueryCounter(site.engine) as counter:
        batches = list(reader.iter_access(NOW, batch_size=3))

    visited = [user_id for batch in batches for user_id in batch]
    assert visited == users[1:]
    assert [len(batch) for batch in batches] == [3, 3, 2]
    assert no_transactions not in visited
    merged = {user_id: grants for batch in batches for user_id, grants in batch.items()}
    assert merged[refunded_only] == {}
    assert set(merged[users[5]]) == {monthly, yearly}
    assert set(merged[users[8]]) == {monthly}
    # Two queries per batch, plus the one that finds no more members.
    assert counter.count == 2 * len(batches) + 1
    assert reader.count_members() == 8


def test_iter_access_batch_larger_than_members(site, reader):
    monthly = site.add_membership("Monthly")
    users = site.add_users(numbered_users(4))
    for user_id in users:
        site.add_transaction(user_id, monthly, expires_at=FUTURE)

    batches = list(reader.iter_access(NOW, batch_size=2000))

    assert len(batches) == 1
    assert list(batches[0]) == users


def test_iter_access_empty_database(reader):
    assert list(reader.iter_access(NOW)) == []
    assert reader.count_members() == 0


def test_iter_access_rejects_zero_batch_size(reader):
    with pytest.raises(ValueError, match="batch_size"):
        next(reader.iter_access(NOW, batch_size=0))


def test_users_reads_utf8mb4_names(site, reader):
    emoji = site.add_user(
        "joao",
        "joao@example.org",
        display_name="João 🏋️ Coach",
        first_name="João",
        last_name="Gonçalves 💪",
    )
    accents = site.add_user(
        "zoe",
        "zoe@example.org",
        display_name="Zoë Ñúñez",
        first_name="Zoë",
        last_name="Ñúñez",
        roles=("administrator",),
    )

    users = reader.users([emoji, accents, 999999])

    assert set(users) == {emoji, accents}
    assert users[emoji].display_name == "João 🏋️ Coach"
    assert users[emoji].first_name == "João"
    assert users[emoji].last_name == "Gonçalves 💪"
    assert users[emoji].roles == frozenset({"subscriber"})
    assert users[accents].login == "zoe"
    assert users[accents].email == "zoe@example.org"
    assert users[accents].last_name == "Ñúñez"
    assert users[accents].roles == frozenset({"administrator"})


def test_users_uses_two_queries(site, reader):
    ids = site.add_users(numbered_users(30))

    with QueryCounter(site.engine) as counter:
        users = reader.users(ids)

    assert sorted(users) == ids
    assert counter.count == 2


def test_users_chunks_long_id_lists(site, reader, monkeypatch):
    monkeypatch.setattr(reader_module, "ID_CHUNK_SIZE", 4)
    ids = site.add_users(numbered_users(10))

    with QueryCounter(site.engine) as counter:
        users = reader.users(ids + ids)

    assert sorted(users) == ids
    assert counter.count == 6


def test_users_empty_list_runs_no_query(site, reader):
    with QueryCounter(site.engine) as counter:
        assert reader.users([]) == {}
    assert counter.count == 0


def test_user_missing_fields_are_empty(site, reader):
    user_id = site.add_user("plain", "plain@example.org")
    usermeta = site.tables.usermeta
    with site.engine.begin() as connection:
        connection.execute(usermeta.delete().where(usermeta.c.user_id == user_id))

    user = reader.user(user_id)

    assert user is not None
    assert user.first_name == ""
    assert user.last_name == ""
    assert user.roles == frozenset()
    assert reader.user(424242) is None


def test_user_reads_oldest_duplicate_meta(site, reader):
    user_id = site.add_user("ana", "ana@example.org", first_name="Ana")
    usermeta = site.tables.usermeta
    with site.engine.begin() as connection:
        connection.execute(
            usermeta.insert(),
            {"user_id": user_id, "meta_key": "first_name", "meta_value": "Later"},
        )

    assert reader.user(user_id).first_name == "Ana"


ROLE_CASES = {
    "several-roles": (
        'a:2:{s:6:"editor";b:1;s:5:"coach";b:1;}',
        {"editor", "coach"},
    ),
    "false-entry": (
        'a:2:{s:13:"administrator";b:0;s:10:"subscriber";b:1;}',
        {"subscriber"},
    ),
    "php-falsy-values": (
        'a:4:{s:1:"a";s:1:"0";s:1:"b";i:0;s:1:"c";s:0:"";s:1:"d";i:1;}',
        {"d"},
    ),
    "non-ascii-role": ('a:1:{s:8:"éditeur";b:1;}', {"éditeur"}),
    "emoji-role": ('a:1:{s:9:"coach🏋";b:1;}', {"coach🏋"}),
    "int-key-ignored": ('a:2:{i:0;b:1;s:6:"author";b:1;}', {"author"}),
    "empty-array": ("a:0:{}", set()),
}


@pytest.mark.parametrize("case", ROLE_CASES)
def test_user_roles(site, reader, case):
    raw, expected = ROLE_CASES[case]
    user_id = site.add_user("ana", "ana@example.org")
    site.set_capabilities(user_id, raw)

    assert reader.user(user_id).roles == frozenset(expected)


MALFORMED_CAPABILITIES = {
    "truncated": 'a:1:{s:13:"administrator";b:1;',
    "length-in-characters": 'a:1:{s:7:"éditeur";b:1;}',
    "object-injection": 'O:8:"stdClass":1:{s:13:"administrator";b:1;}',
    "nested-object": 'a:1:{s:13:"administrator";O:8:"stdClass":0:{}}',
    "plain-text": "administrator",
    "serialized-string": 's:13:"administrator";',
}


@pytest.mark.parametrize("case", MALFORMED_CAPABILITIES)
def test_malformed_capabilities_give_no_roles(site, reader, caplog, case):
    user_id = site.add_user("ana", "ana@example.org", roles=("administrator",))
    site.set_capabilities(user_id, MALFORMED_CAPABILITIES[case])

    with caplog.at_level(logging.WARNING, logger="sync.reader"):
        user = reader.user(user_id)
        is_admin = reader.is_administrator(user_id)

    assert user.roles == frozenset()
    assert is_admin is False
    messages = [record.getMessage() for record in caplog.records]
    assert messages, "expected a warning about the capabilities"
    assert all(f"user {user_id}" in message for message in messages)


def test_is_administrator(site, reader):
    admin = site.add_user("root", "root@example.org", roles=("administrator",))
    revoked = site.add_user(
        "former", "former@example.org", roles={"administrator": False, "editor": True}
    )
    editor = site.add_user("ed", "ed@example.org", roles=("editor",))

    assert reader.is_administrator(admin) is True
    assert reader.is_administrator(revoked) is False
    assert reader.is_administrator(editor) is False
    assert reader.is_administrator(31337) is False
    assert reader.administrator_ids() == [admin]


SEARCH_PEOPLE = [
    ("ana_lima", "ana@example.org", "Ana Lima"),
    ("analog", "synth@example.org", "Synth Fan"),
    ("bruno", "bruno@example.org", "Bruno 100% Fit"),
    ("carla", "carla@lima.example", "Carla"),
    ("dora", "dora@example.org", "Dora 🏋️ Strong"),
]


@pytest.mark.parametrize(
    ("text", "expected_logins"),
    [
        ("lima", ["ana_lima", "carla"]),
        ("LIMA", ["ana_lima", "carla"]),
        ("ana", ["ana_lima", "analog"]),
        ("synth@", ["analog"]),
        ("%", ["bruno"]),
        ("_", ["ana_lima"]),
        ("100%", ["bruno"]),
        ("a_l", ["ana_lima"]),
        ("🏋️", ["dora"]),
        ("nobody", []),
    ],
    ids=[
        "email-domain",
        "case-insensitive",
        "login-prefix",
        "email",
        "percent-literal",
        "underscore-literal",
        "percent-in-name",
        "underscore-in-login",
        "emoji",
        "no-match",
    ],
)
def test_search_users(site, reader, text, expected_logins):
    for login, email, display_name in SEARCH_PEOPLE:
        site.add_user(login, email, display_name=display_name)

    found = reader.search_users(text)

    assert [user.login for user in found] == expected_logins


def test_search_users_limit(site, reader):
    ids = site.add_users(numbered_users(5))

    found = reader.search_users("member", limit=2)

    assert [user.id for user in found] == ids[:2]


def test_memberships_exclude_trash_by_default(site, reader):
    monthly = site.add_membership("Monthly Coaching")
    draft = site.add_membership("Draft Plan", status="draft")
    old = site.add_membership("Old Plan")
    site.set_membership_status(old, "trash")

    assert reader.memberships() == [
        Membership(monthly, "Monthly Coaching", "publish"),
        Membership(draft, "Draft Plan", "draft"),
    ]
    assert reader.memberships(include_trash=True)[-1] == Membership(
        old, "Old Plan", "trash"
    )


def test_site_time(site, reader):
    assert reader.site_time() == SiteTime(timezone_string="", gmt_offset="")

    site.set_option("timezone_string", "Europe/Lisbon")
    site.set_option("gmt_offset", "0")
    site.set_option("blogname", "Coaching")

    assert reader.site_time() == SiteTime("Europe/Lisbon", "0")


def test_custom_prefix(make_site):
    site = make_site(prefix="wpx_")
    reader = WordPressReader(site.engine, table_prefix="wpx_")
    user_id = site.add_user("eva", "eva@example.org", roles=("editor", "coach"))
    monthly = site.add_membership("Monthly")
    site.add_transaction(user_id, monthly, expires_at=FUTURE)

    assert reader.user(user_id).roles == frozenset({"editor", "coach"})
    assert set(reader.access(user_id, NOW)) == {monthly}
    assert reader.memberships()[0].id == monthly

    wrong_prefix = WordPressReader(site.engine, table_prefix="wp_")
    with pytest.raises(sa.exc.DBAPIError) as raised:
        wrong_prefix.user(user_id)
    assert not isinstance(raised.value, WordPressUnavailable)


def test_reader_rejects_invalid_prefix(site):
    with pytest.raises(ValueError, match="invalid WordPress table prefix"):
        WordPressReader(site.engine, table_prefix="wp_; DROP")


def test_ping(reader):
    reader.ping()


def test_search_users_rejects_zero_limit(reader):
    with pytest.raises(ValueError, match="limit"):
        reader.search_users("ana", limit=0)


def test_grants_access_reads_driver_values():
    aware_now = NOW.replace(tzinfo=dt.UTC)

    assert grants_access("complete", "payment", ZERO_DATE, aware_now) is True
    assert grants_access("complete", "payment", "2026-04-01 00:00:00", NOW) is True
    assert grants_access("complete", "payment", "2026-03-01 00:00:00", NOW) is False
    assert grants_access("complete", "payment", "not a date", NOW) is False
    assert grants_access(None, None, None, NOW) is False
