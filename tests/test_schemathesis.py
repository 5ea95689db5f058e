"""Property-based tests of /api/v1/ against its OpenAPI document, with schemathesis.

Schemathesis generates requests for every operation of the document, valid ones
and invalid ones, sends them to the Flask app in process and checks each
response: no 5xx, a documented status, a body that matches the response
schema, and the other checks schemathesis runs by default.

Requests must be signed, and the signature covers the body, which schemathesis
serializes only when it sends the request. So the auth provider below only
marks a request with the acting user and a placeholder signature, and a WSGI
wrapper around the app replaces the placeholder with real signing headers. A
request without the marker, such as those of the ``ignored_auth`` check, stays
unsigned and must get 401.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from werkzeug.test import Client, TestResponse

from bridge.openapi import load_document
from bridge.signing import (
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    USER_HEADER,
    sign_request,
)
from tests.test_api_client import NOW, SECRET, add_ticks, build_client_site

# Few examples per operation keep the whole run well under a minute on two
# cores; every CI run draws new ones.
MAX_EXAMPLES = 10
PLACEHOLDER_SIGNATURE = "v1=sign-in-test-middleware"
ADMIN_PREFIX = "/api/v1/admin/"


def _environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


class SigningMiddleware:
    """WSGI wrapper that signs requests carrying the placeholder signature."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get(_environ_key(SIGNATURE_HEADER)) == PLACEHOLDER_SIGNATURE:
            self._sign(environ)
        return self.app(environ, start_response)

    def _sign(self, environ: dict[str, Any]) -> None:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        # WSGI carries the path as latin-1; Flask decodes it as UTF-8 as here.
        path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        user = environ.get(_environ_key(USER_HEADER), "0")
        headers = sign_request(
            SECRET,
            environ["REQUEST_METHOD"],
            path,
            environ.get("QUERY_STRING", ""),
            body,
            int(user) if user.isdigit() else 0,
            int(NOW.timestamp()),
        )
        for name in (
            TIMESTAMP_HEADER,
            REQUEST_ID_HEADER,
            USER_HEADER,
            SIGNATURE_HEADER,
        ):
            environ[_environ_key(name)] = headers[name]


def _operation_cases() -> list[tuple[str, GenerationMode]]:
    """List each operation with positive data, and with negative data given input.

    An operation without parameters, body or signature has nothing that could
    be made invalid, so hypothesis would find no negative case.
    """
    cases = []
    for path, operations in load_document()["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            cases.append((label, GenerationMode.POSITIVE))
            has_input = operation.get("parameters") or operation.get("requestBody")
            if has_input or operation.get("security") != []:
                cases.append((label, GenerationMode.NEGATIVE))
    return cases


@pytest.fixture
def site(make_runtime, tmp_path):
    site = build_client_site(make_runtime, tmp_path)
    add_ticks(site, site.cleo_strength, milestones=[site.milestone_first])
    # A conversation with a message, so that message operations can find one.
    conversation = site.call(
        "POST", "/api/v1/conversations", site.cleo, {"partner_id": site.coach_ana}
    ).get_json()["id"]
    site.call(
        "POST",
        f"/api/v1/conversations/{conversation}/messages",
        site.cleo,
        {"body": "Hello"},
    )
    return site


@pytest.fixture
def api_schema(site):
    config = SchemathesisConfig.from_dict(
        {
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            # The API has rules that OpenAPI cannot state: a habit window runs
            # forwards and spans at most 120 days, a tick's date must be a due
            # date of the habit and not after today. Schema-valid requests that
            # break them get 400, so this check would report valid behaviour.
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", SigningMiddleware(site.app), config=config
    )

    @schema.auth()
    class ActingUser:
        """Mark every request to be signed: admin routes as the administrator."""

        def get(self, case, context):  # type: ignore[no-untyped-def]
            if context.operation.path.startswith(ADMIN_PREFIX):
                return site.admin
            return site.cleo

        def set(self, case, user, context):  # type: ignore[no-untyped-def]
            case.headers = dict(case.headers or {})
            case.headers[USER_HEADER] = str(user)
            case.headers[SIGNATURE_HEADER] = PLACEHOLDER_SIGNATURE
            case.headers[TIMESTAMP_HEADER] = "0"
            case.headers[REQUEST_ID_HEADER] = "placeholder-request-id"

    return schema


# NOTE: schemathesis.pytest.from_fixture(...).parametrize() fails on pytest 9
# (schemathesis 4.32.5 reads the removed Node._nodeid), so each operation runs
# its strategy under an explicit @given instead.
@pytest.mark.parametrize(("label", "mode"), _operation_cases())
def test_operation_matches_document(api_schema, label, mode):
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label
    strategy = operation.as_strategy(generation_mode=mode, auth_storage=api_schema.auth)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):  # type: ignore[no-untyped-def]
        response = case.call_and_validate()
        if mode is GenerationMode.POSITIVE:
            # A 401 here would mean the middleware did not sign, and every
            # other check would then pass without reaching a view.
            assert response.status_code != 401, response.text

    check()


def test_middleware_signs_marked_requests(site):
    client = Client(SigningMiddleware(site.app), response_wrapper=TestResponse)
    marked = {
        USER_HEADER: str(site.cleo),
        SIGNATURE_HEADER: PLACEHOLDER_SIGNATURE,
        TIMESTAMP_HEADER: "0",
        REQUEST_ID_HEADER: "placeholder-request-id",
    }
    response = client.get("/api/v1/me/enrollments", headers=marked)
    assert response.status_code == 200
    assert len(response.get_json()["enrollments"]) == 2
    assert client.get("/api/v1/me/enrollments").status_code == 401
