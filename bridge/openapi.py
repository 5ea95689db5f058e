"""The OpenAPI document of ``/api/v1/``, served unsigned at ``/api/v1/openapi.json``.

The document is kept by hand in ``bridge/openapi/client.json``. The
administration API adds its operations in ``bridge/openapi/admin.json``, a
fragment with the same top-level keys: its ``paths``, ``tags`` and each map
under ``components`` are merged into the client document. A missing admin file
adds nothing. An operation, tag or component defined in both files is an
error, because one file would silently replace the other's definition.

tests/test_openapi.py checks that the document and the routes registered under
``/api/v1/`` match, and tests/test_schemathesis.py checks responses against it.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from importlib import resources
from typing import Any

from flask import Blueprint, Response, jsonify

log = logging.getLogger(__name__)

CLIENT_DOCUMENT = "client.json"
ADMIN_DOCUMENT = "admin.json"

openapi_blueprint = Blueprint("openapi", __name__, url_prefix="/api/v1")


@openapi_blueprint.get("/openapi.json")
def openapi_document() -> Response:
    """Return the merged OpenAPI document; it needs no signature."""
    return jsonify(load_document())


@functools.cache
def load_document() -> dict[str, Any]:
    """Read the client document and merge the admin fragment when it exists."""
    document = _read(CLIENT_DOCUMENT)
    if document is None:
        raise FileNotFoundError(f"bridge/openapi/{CLIENT_DOCUMENT} is missing")
    fragment = _read(ADMIN_DOCUMENT)
    if fragment is not None:
        merge_fragment(document, fragment)
    return document


def _read(name: str) -> dict[str, Any] | None:
    path = resources.files("bridge").joinpath("openapi", name)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def merge_fragment(document: dict[str, Any], fragment: dict[str, Any]) -> None:
    """Add a fragment's paths, tags and components to ``document`` in place.

    Raises ValueError naming the first operation, tag or component that both
    define.
    """
    paths = document.setdefault("paths", {})
    for path, operations in fragment.get("paths", {}).items():
        target = paths.setdefault(path, {})
        for method, operation in operations.items():
            if method in target:
                raise ValueError(
                    f"OpenAPI operation {method.upper()} {path} is defined in both "
                    f"{CLIENT_DOCUMENT} and {ADMIN_DOCUMENT}"
                )
            target[method] = copy.deepcopy(operation)

    tags = document.setdefault("tags", [])
    known_tags = {tag["name"] for tag in tags}
    for tag in fragment.get("tags", []):
        if tag["name"] in known_tags:
            raise ValueError(f"OpenAPI tag {tag['name']!r} is defined in both files")
        tags.append(copy.deepcopy(tag))

    components = document.setdefault("components", {})
    for section, entries in fragment.get("components", {}).items():
        target = components.setdefault(section, {})
        for name, entry in entries.items():
            if name in target:
                raise ValueError(
                    f"OpenAPI component {section}/{name} is defined in both files"
                )
            target[name] = copy.deepcopy(entry)
