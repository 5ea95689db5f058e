"""Tests of request signing: the canonical form, verification and replay storage."""

from __future__ import annotations

import datetime as dt
import hashlib
import random

import pytest
import sqlalchemy as sa
from flask import Blueprint, Flask, jsonify, request

from bridge.app import EXTENSION_KEY, error_response
from bridge.errors import CoachbridgeError
from bridge.models import SeenRequest
from bridge.signing import (
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    USER_HEADER,
    canonical_query,
    canonical_string,
    compute_signature,
    prune_request_ids,
    require_signed_requests,
    sign_request,
    signed,
    signed_user_id,
)

SECRET = "first-secret-0123456789"
NEW_SECRET = "second-secret-0123456789"
NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
NOW_SECONDS = int(NOW.timestamp())
PATH = "/api/v1/enrollments/7/messages"
BODY = b'{"text": "Hello coach"}'


class FixedClock:
    """A clock that stays where the test sets it."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class NeverPrune(random.Random):
    """A generator whose randrange never returns 0, so pruning never runs."""

    def randrange(self, *args, **kwargs) -> int:  # type: ignore[override]
        return 1


class AlwaysPrune(random.Random):
    """A generator whose randrange always returns 0, so pruning always runs."""

    def randrange(self, *args, **kwargs) -> int:  # type: ignore[override]
        return 0


def _build_app(runtime) -> Flask:
    app = Flask(__name__)
    app.extensions[EXTENSION_KEY] = runtime

    api = Blueprint("test_api", __name__, url_prefix="/api/v1")
    require_signed_requests(api)

    @api.route("/enrollments/<int:enrollment_id>/messages", methods=["GET", "POST"])
    def messages(enrollment_id: int):  # type: ignore[no-untyped-def]
        return jsonify(user=signed_user_id(), body=request.get_data(as_text=True))

    @api.route("/enrollments/<int:enrollment_id>/ticks", methods=["PUT"])
    @signed
    def tick(enrollment_id: int):  # type: ignore[no-untyped-def]
        return jsonify(user=signed_user_id())

    @app.route("/pages/client")
    @signed
    def client_page():  # type: ignore[no-untyped-def]
        return f"user {signed_user_id()}"

    @app.route("/health")
    def health():  # type: ignore[no-untyped-def]
        return "ok"

    app.register_blueprint(api)

    @app.errorhandler(CoachbridgeError)
    def _error(error: CoachbridgeError):  # type: ignore[no-untyped-def]
        return error_response(error.status, error.code, error.message)

    return app


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def make_signed_app(make_runtime, clock):
    """Build a test app whose runtime accepts the given secrets."""

    def make(secrets=(SECRET,), rng=None, state_url=None):
        runtime = make_runtime(
            state_url=state_url,
            clock=clock,
            rng=rng or NeverPrune(),
            api={"secrets": list(secrets), "clock_skew_seconds": 300},
        )
        return _build_app(runtime), runtime

    return make


@pytest.fixture
def app_and_runtime(make_signed_app):
    return make_signed_app()


@pytest.fixture
def client(app_and_runtime):
    app, _ = app_and_runtime
    return app.test_client()


def _headers(
    method="POST",
    path=PATH,
    query="",
    body=BODY,
    user_id=42,
    secret=SECRET,
    timestamp=NOW_SECONDS,
    request_id=None,
) -> dict[str, str]:
    headers = sign_request(
        secret, method, path, query, body, user_id, timestamp, request_id
    )
    headers["Content-Type"] = "application/json"
    return headers


def _error_message(response) -> str:
    return response.get_json()["error"]["message"]


def test_canonical_string_lines():
    canonical = canonical_string(
        "post", "/api/v1/x", "a=1", 1700000000, "r" * 16, 5, b""
    )
    assert canonical.split("\n") == [
        "POST",
        "/api/v1/x",
        "a=1",
        "1700000000",
        "r" * 16,
        "5",
        hashlib.sha256(b"").hexdigest(),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        (None, ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1", "a=1&a=2"),
        ("view=week&&program=3&", "program=3&view=week"),
        ("flag", "flag="),
        ("q=a+b", "q=a%20b"),
        ("q=a%20b", "q=a%20b"),
        ("q=%7e%2a", "q=~%2A"),
        ("name=Zo%C3%AB", "name=Zo%C3%AB"),
        ("k%3D=v%26", "k%3D=v%26"),
        ("q=100%", "q=100%25"),
        (b"q=%FF", "q=%FF"),
        ({"view": "week", "program": "3"}, "program=3&view=week"),
        ([("q", "a b/c"), ("name", "Zoë")], "name=Zo%C3%AB&q=a%20b%2Fc"),
    ],
)
def test_canonical_query_forms(query, expected):
    assert canonical_query(query) == expected


def test_sign_request_headers():
    headers = sign_request(SECRET, "get", "/pages/client", "", b"", 0, 1700000000)
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    assert headers[USER_HEADER] == "0"
    assert 16 <= len(headers[REQUEST_ID_HEADER]) <= 64
    canonical = canonical_string(
        "GET", "/pages/client", "", 1700000000, headers[REQUEST_ID_HEADER], 0, b""
    )
    assert headers[SIGNATURE_HEADER] == "v1=" + compute_signature(SECRET, canonical)


def test_sign_request_new_id_each_time():
    first = sign_request(SECRET, "GET", "/pages/client", "", b"", 1)
    second = sign_request(SECRET, "GET", "/pages/client", "", b"", 1)
    assert first[REQUEST_ID_HEADER] != second[REQUEST_ID_HEADER]


def test_sign_request_rejects_bad_request_id():
    with pytest.raises(ValueError, match="invalid request id"):
        sign_request(SECRET, "GET", "/pages/client", "", b"", 1, request_id="short")


def test_valid_request_accepted(client):
    response = client.post(PATH, data=BODY, headers=_headers())
    assert response.status_code == 200
    assert response.get_json() == {"user": 42, "body": BODY.decode()}


def test_valid_request_with_query(client):
    query = "view=week&program=3&q=a+b"
    response = client.get(
        f"{PATH}?{query}", headers=_headers("GET", query=query, body=b"")
    )
    assert response.status_code == 200


def test_query_reencoded_in_transit_accepted(client):
    headers = _headers("GET", query={"q": "a b", "view": "week"}, body=b"")
    response = client.get(f"{PATH}?view=week&q=a+b", headers=headers)
    assert response.status_code == 200


def test_signed_decorator_on_view(client):
    headers = _headers("GET", path="/pages/client", body=b"", user_id=9)
    response = client.get("/pages/client", headers=headers)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "user 9"


def test_signed_view_in_protected_blueprint(client):
    path = "/api/v1/enrollments/7/ticks"
    headers = _headers("PUT", path=path, body=b"", user_id=3)
    response = client.put(path, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"user": 3}


def test_unprotected_view_needs_no_signature(client):
    assert client.get("/health").status_code == 200


def test_expired_request_rejected(client):
    headers = _headers(timestamp=NOW_SECONDS - 301)
    response = client.post(PATH, data=BODY, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert _error_message(response).startswith("expired:")
    assert "301 seconds old" in _error_message(response)


def test_timestamp_at_skew_limit_accepted(client):
    headers = _headers(timestamp=NOW_SECONDS - 300)
    assert client.post(PATH, data=BODY, headers=headers).status_code == 200
    headers = _headers(timestamp=NOW_SECONDS + 300)
    assert client.post(PATH, data=BODY, headers=headers).status_code == 200


def test_future_request_rejected(client):
    headers = _headers(timestamp=NOW_SECONDS + 301)
    response = client.post(PATH, data=BODY, headers=headers)
    assert response.status_code == 401
    assert _error_message(response).startswith("from the future:")


def test_replayed_request_rejected(client):
    headers = _headers()
    assert client.post(PATH, data=BODY, headers=headers).status_code == 200
    response = client.post(PATH, data=BODY, headers=headers)
    assert response.status_code == 401
    assert _error_message(response).startswith("replayed:")


def test_replay_shared_between_processes(make_signed_app, tmp_path):
    state_url = f"sqlite:///{tmp_path}/shared.sqlite3"
    first_app, _ = make_signed_app(state_url=state_url)
    second_app, _ = make_signed_app(state_url=state_url)
    headers = _headers()
    response = first_app.test_client().post(PATH, data=BODY, headers=headers)
    assert response.status_code == 200
    response = second_app.test_client().post(PATH, data=BODY, headers=headers)
    assert response.status_code == 401
    assert _error_message(response).startswith("replayed:")


def test_rejected_request_id_not_recorded(client, app_and_runtime):
    _, runtime = app_and_runtime
    headers = _headers(secret="wrong-secret-0123456789")
    assert client.post(PATH, data=BODY, headers=headers).status_code == 401
    with runtime.db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(SeenRequest)) == 0


@pytest.mark.parametrize(
    ("field", "changed"),
    [
        ("body", {"data": b'{"text": "Hello, coach"}'}),
        ("path", {"path": "/api/v1/enrollments/8/messages"}),
        ("query", {"query_string": "view=all"}),
        ("method", {"method": "GET"}),
    ],
)
def test_tampered_request_rejected(client, field, changed):
    headers = _headers()
    arguments = {"path": PATH, "method": "POST", "data": BODY, "headers": headers}
    arguments.update(changed)
    response = client.open(**arguments)
    assert response.status_code == 401, field
    assert _error_message(response).startswith("bad signature:")


def test_tampered_user_rejected(client):
    headers = _headers(user_id=42)
    headers[USER_HEADER] = "1"
    response = client.post(PATH, data=BODY, headers=headers)
    assert response.status_code == 401
    assert _error_message(response).startswith("bad signature:")


def test_tampered_timestamp_rejected(client):
    headers = _headers()
    headers[TIMESTAMP_HEADER] = str(NOW_SECONDS + 1)
    response = client.post(PATH, data=BODY, headers=headers)
    assert _error_message(response).startswith("bad signature:")


def test_tampered_request_id_rejected(client):
    headers = _headers()
    headers[REQUEST_ID_HEADER] = "another-request-id-1234"
    response = client.post(PATH, data=BODY, headers=headers)
    assert _error_message(response).startswith("bad signature:")


def test_bad_signature_hides_expected_value(client, app_and_runtime):
    headers = _headers(secret="wrong-secret-0123456789")
    response = client.post(PATH, data=BODY, headers=headers)
    expected = sign_request(
        SECRET,
        "POST",
        PATH,
        "",
        BODY,
        42,
        NOW_SECONDS,
        headers[REQUEST_ID_HEADER],
    )[SIGNATURE_HEADER]
    text = response.get_data(as_text=True)
    assert expected.removeprefix("v1=") not in text
    assert SECRET not in text


def test_rotated_secrets_both_accepted(make_signed_app):
    app, _ = make_signed_app(secrets=(NEW_SECRET, SECRET))
    client = app.test_client()
    for secret in (SECRET, NEW_SECRET):
        response = client.post(PATH, data=BODY, headers=_headers(secret=secret))
        assert response.status_code == 200, secret


def test_removed_secret_rejected(make_signed_app):
    app, _ = make_signed_app(secrets=(NEW_SECRET,))
    client = app.test_client()
    response = client.post(PATH, data=BODY, headers=_headers(secret=SECRET))
    assert response.status_code == 401
    assert _error_message(response).startswith("bad signature:")
    response = client.post(PATH, data=BODY, headers=_headers(secret=NEW_SECRET))
    assert response.status_code == 200


def test_no_secrets_configured_rejected(make_signed_app):
    app, _ = make_signed_app(secrets=())
    response = app.test_client().post(PATH, data=BODY, headers=_headers())
    assert response.status_code == 401
    assert "no API secrets configured" in _error_message(response)


@pytest.mark.parametrize(
    "header", [TIMESTAMP_HEADER, REQUEST_ID_HEADER, USER_HEADER, SIGNATURE_HEADER]
)
def test_missing_header_rejected(client, header):
    headers = _headers()
    del headers[header]
    response = client.post(PATH, data=BODY, headers=headers)
    assert response.status_code == 401
    assert _error_message(response) == f"missing header {header}"


def test_unsigned_request_lists_all_headers(client):
    response = client.get("/pages/client")
    assert response.status_code == 401
    message = _error_message(response)
    assert message.startswith("missing header ")
    for header in (TIMESTAMP_HEADER, REQUEST_ID_HEADER, USER_HEADER, SIGNATURE_HEADER):
        assert header in message


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (TIMESTAMP_HEADER, "yesterday"),
        (TIMESTAMP_HEADER, "-5"),
        (REQUEST_ID_HEADER, "short"),
        (REQUEST_ID_HEADER, "has spaces in the id!"),
        (USER_HEADER, "-1"),
        (USER_HEADER, "007"),
        (SIGNATURE_HEADER, "v2=" + "0" * 64),
        (SIGNATURE_HEADER, "v1=" + "A" * 64),
    ],
)
def test_malformed_header_rejected(client, header, value):
    headers = _headers()
    headers[header] = value
    response = client.post(PATH, data=BODY, headers=headers)
    assert response.status_code == 401
    assert _error_message(response).startswith(f"invalid header {header}:")


def test_prune_deletes_only_old_ids(app_and_runtime, clock):
    app, runtime = app_and_runtime
    client = app.test_client()
    old = _headers(timestamp=NOW_SECONDS - 100)
    assert client.post(PATH, data=BODY, headers=old).status_code == 200
    clock.now = NOW + dt.timedelta(seconds=550)
    recent = _headers(timestamp=NOW_SECONDS + 400)
    assert client.post(PATH, data=BODY, headers=recent).status_code == 200

    assert prune_request_ids(runtime) == 1
    with runtime.db.session() as session:
        remaining = session.scalars(sa.select(SeenRequest.request_id)).all()
    assert remaining == [recent[REQUEST_ID_HEADER]]


def test_pruned_id_replay_still_expired(app_and_runtime, clock):
    app, runtime = app_and_runtime
    client = app.test_client()
    headers = _headers()
    assert client.post(PATH, data=BODY, headers=headers).status_code == 200
    clock.now = NOW + dt.timedelta(seconds=601)
    assert prune_request_ids(runtime) == 1
    response = client.post(PATH, data=BODY, headers=headers)
    assert _error_message(response).startswith("expired:")


def test_verification_prunes_sometimes(make_signed_app, clock):
    app, runtime = make_signed_app(rng=AlwaysPrune())
    client = app.test_client()
    first = _headers()
    assert client.post(PATH, data=BODY, headers=first).status_code == 200
    clock.now = NOW + dt.timedelta(seconds=700)
    second = _headers(timestamp=NOW_SECONDS + 700)
    assert client.post(PATH, data=BODY, headers=second).status_code == 200
    with runtime.db.session() as session:
        remaining = session.scalars(sa.select(SeenRequest.request_id)).all()
    assert remaining == [second[REQUEST_ID_HEADER]]


@pytest.mark.mariadb
def test_replay_rejected_on_mariadb(make_signed_app, mysql_database_factory):
    state_url = mysql_database_factory("signing")
    app, _ = make_signed_app(state_url=state_url)
    client = app.test_client()
    request_id = "abcdefghijklmnopqrstuvwxyz"
    headers = _headers(request_id=request_id)
    assert client.post(PATH, data=BODY, headers=headers).status_code == 200
    response = client.post(PATH, data=BODY, headers=headers)
    assert _error_message(response).startswith("replayed:")
    # Request ids are case-sensitive although MySQL's default collation is not.
    headers = _headers(request_id=request_id.upper())
    assert client.post(PATH, data=BODY, headers=headers).status_code == 200
