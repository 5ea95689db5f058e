"""Tests of the OpenAPI document: it matches the routes and merges the admin part."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.app import create_app
from bridge.openapi import load_document, merge_fragment

API_PREFIX = "/api/v1/"
IGNORED_METHODS = {"HEAD", "OPTIONS"}
SIGNING_HEADERS = {
    "X-Coachbridge-Timestamp",
    "X-Coachbridge-Request-Id",
    "X-Coachbridge-User",
    "X-Coachbridge-Signature",
}


@pytest.fixture
def app(make_runtime):
    return create_app(runtime=make_runtime())


def _openapi_path(rule: str) -> str:
    """Turn a Flask rule such as ``/a/<int:id>`` into ``/a/{id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX):
            continue
        for method in rule.methods - IGNORED_METHODS:
            routes.add((_openapi_path(rule.rule), method.lower()))
    return routes


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, operations in document["paths"].items()
        for method in operations
    }


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_document_served_unsigned(app):
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.")


def test_every_route_documented(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    missing = _routes(app) - _documented(document)
    assert not missing, f"routes without an OpenAPI operation: {sorted(missing)}"


def test_every_operation_routed(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    unrouted = _documented(document) - _routes(app)
    assert not unrouted, f"OpenAPI operations without a route: {sorted(unrouted)}"


def test_path_parameters_declared(app):
    document = load_document()
    parameters = document["components"]["parameters"]
    for path, operations in document["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for method, operation in operations.items():
            declared = set()
            for parameter in operation.get("parameters", []):
                if "$ref" in parameter:
                    parameter = parameters[parameter["$ref"].rsplit("/", 1)[1]]
                if parameter["in"] == "path":
                    declared.add(parameter["name"])
            assert declared == names, f"{method.upper()} {path}"


def test_references_resolve():
    document = load_document()
    for node in _walk(document):
        reference = node.get("$ref")
        if reference is None:
            continue
        target: Any = document
        for part in reference.removeprefix("#/").split("/"):
            assert part in target, reference
            target = target[part]


def test_response_objects_closed():
    schemas = load_document()["components"]["schemas"]
    for name, schema in schemas.items():
        for node in _walk(schema):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, name


def test_signing_headers_documented():
    document = load_document()
    schemes = document["components"]["securitySchemes"]
    assert {scheme["name"] for scheme in schemes.values()} == SIGNING_HEADERS
    assert all(scheme["in"] == "header" for scheme in schemes.values())
    assert document["security"] == [dict.fromkeys(schemes, [])]


def test_only_the_document_is_unsigned():
    document = load_document()
    unsigned = [
        (path, method)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") == []
    ]
    assert unsigned == [("/api/v1/openapi.json", "get")]


def test_operations_document_errors():
    for path, operations in load_document()["paths"].items():
        for method, operation in operations.items():
            if operation.get("security") == []:
                continue
            assert "401" in operation["responses"], f"{method.upper()} {path}"


def test_merge_adds_fragment():
    document = {"paths": {"/api/v1/a": {"get": {}}}, "tags": [{"name": "client"}]}
    fragment = {
        "paths": {"/api/v1/a": {"post": {}}, "/api/v1/admin/b": {"get": {}}},
        "tags": [{"name": "admin"}],
        "components": {"schemas": {"Program": {"type": "object"}}},
    }
    merge_fragment(document, fragment)
    assert set(document["paths"]["/api/v1/a"]) == {"get", "post"}
    assert "/api/v1/admin/b" in document["paths"]
    assert [tag["name"] for tag in document["tags"]] == ["client", "admin"]
    assert document["components"]["schemas"] == {"Program": {"type": "object"}}


@pytest.mark.parametrize(
    "fragment",
    [
        {"paths": {"/api/v1/a": {"get": {}}}},
        {"tags": [{"name": "client"}]},
        {"components": {"schemas": {"Error": {}}}},
    ],
)
def test_merge_rejects_duplicates(fragment):
    document = {
        "paths": {"/api/v1/a": {"get": {}}},
        "tags": [{"name": "client"}],
        "components": {"schemas": {"Error": {}}},
    }
    with pytest.raises(ValueError, match="defined in both"):
        merge_fragment(document, fragment)


def test_merge_leaves_fragment_unchanged():
    fragment = {"paths": {"/api/v1/admin/b": {"get": {"responses": {}}}}}
    before = json.dumps(fragment, sort_keys=True)
    document: dict[str, Any] = {"paths": {}}
    merge_fragment(document, fragment)
    document["paths"]["/api/v1/admin/b"]["get"]["responses"]["200"] = {}
    assert json.dumps(fragment, sort_keys=True) == before
