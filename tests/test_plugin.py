"""Tests of the WordPress plugin in wp_plugin_stub/: syntax, conventions, PHP tests.

The PHP checks need the ``php`` command line. Without it they are skipped with
the reason shown, except under CI (``CI=true``), where they fail instead.

Regenerate tests/php/vectors.json after changing the signing scheme with
``python tests/test_plugin.py --write-vectors``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bridge.signing import canonical_query, canonical_string, sign_request

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "wp_plugin_stub"
PHP_TESTS = ROOT / "tests" / "php"
VECTORS = PHP_TESTS / "vectors.json"
PLUGIN_PHP_FILES = sorted(PLUGIN.rglob("*.php"))
ALL_PHP_FILES = PLUGIN_PHP_FILES + sorted(PHP_TESTS.glob("*.php"))

ABSPATH_GUARD = "defined( 'ABSPATH' ) || exit;"

RAW_QUERIES = [
    "",
    "view=week",
    "view=week&program=3",
    "b=2&a=1&a=0",
    "view=week&&program=3&",
    "flag",
    "q=a+b",
    "q=a%20b",
    "q=%7e%2a%2d",
    "name=Zo%C3%AB",
    "k%3D=v%26",
    "q=100%",
    "q=%zz",
    "q=%FF",
    "a.b=1&c[]=2",
    "empty=&=value",
]

SIGNED_REQUESTS = [
    {
        "secret": "vector-secret-0123456789",
        "method": "GET",
        "path": "/pages/client",
        "query": {"view": ["week"], "program": ["3"]},
        "body": "",
        "user_id": 42,
        "timestamp": 1772443800,
        "request_id": "0123456789abcdef0123456789abcdef",
    },
    {
        "secret": "vector-secret-0123456789",
        "method": "post",
        "path": "/api/v1/enrollments/7/messages",
        "query": {},
        "body": '{"text":"Salut Zoë 👋"}',
        "user_id": 5,
        "timestamp": 1772443801,
        "request_id": "Abc-def_0123456789",
    },
    {
        "secret": "another secret with spaces & ünïcode",
        "method": "DELETE",
        "path": "/api/v1/enrollments/7/habits/3/ticks/2026-03-02",
        "query": {"q": ["a b/c", "~x"], "a": ["2", "1"]},
        "body": "",
        "user_id": 0,
        "timestamp": 1,
        "request_id": "x" * 64,
    },
]


def build_vectors() -> dict:
    """Compute the PHP test vectors with bridge/signing.py."""
    queries = [{"raw": raw, "canonical": canonical_query(raw)} for raw in RAW_QUERIES]
    signatures = []
    for request in SIGNED_REQUESTS:
        pairs = [
            (name, value)
            for name, values in request["query"].items()
            for value in values
        ]
        canonical = canonical_string(
            request["method"],
            request["path"],
            canonical_query(pairs),
            request["timestamp"],
            request["request_id"],
            request["user_id"],
            request["body"],
        )
        headers = sign_request(
            request["secret"],
            request["method"],
            request["path"],
            pairs,
            request["body"],
            request["user_id"],
            request["timestamp"],
            request["request_id"],
        )
        signatures.append({**request, "canonical": canonical, "headers": headers})
    return {"queries": queries, "signatures": signatures}


@pytest.fixture(scope="module")
def php() -> str:
    """Path of the php command line, or skip (fail under CI) without it."""
    path = shutil.which("php")
    if path is None:
        reason = "php is not installed; install php-cli to run the plugin's tests"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI must run them)")
        pytest.skip(reason)
    return path


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", ALL_PHP_FILES, ids=_relative)
def test_php_syntax(php, path):
    result = subprocess.run(
        [php, "-l", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", PLUGIN_PHP_FILES, ids=_relative)
def test_plugin_file_abspath_guard(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<?php\n")
    # The guard must be the first statement: only the file's docblock may precede it.
    without_docblock = re.sub(r"^<\?php\s*(/\*\*.*?\*/\s*)?", "", text, flags=re.S)
    assert without_docblock.startswith(ABSPATH_GUARD)


@pytest.mark.parametrize("path", PLUGIN_PHP_FILES, ids=_relative)
def test_plugin_global_names_prefixed(path):
    text = path.read_text(encoding="utf-8")
    functions = re.findall(r"^function\s+(\w+)", text, flags=re.M)
    classes = re.findall(r"^(?:final\s+|abstract\s+)?class\s+(\w+)", text, flags=re.M)
    constants = re.findall(r"^define\(\s*'(\w+)'", text, flags=re.M)
    for name in functions:
        assert name.startswith("coachbridge_"), name
    for name in classes:
        assert name.startswith("Coachbridge_"), name
    for name in constants:
        assert name.startswith("COACHBRIDGE_"), name


def test_vectors_match_python():
    committed = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert committed == build_vectors()


def test_php_unit_tests(php):
    result = subprocess.run(
        [php, str(PHP_TESTS / "run.php")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    output = result.stdout + result.stderr
    last_line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert re.fullmatch(r"\d+ passed, 0 failed", last_line), output
    assert result.returncode == 0, output


def test_php_signature_verified_by_bridge(php, make_runtime):
    """Sign with the PHP client at the current time and verify with bridge."""
    from flask import Flask

    from bridge.app import EXTENSION_KEY
    from bridge.signing import verify_request

    secret = "end-to-end-secret-0123456789"
    script = (
        "define('ABSPATH', '/');"
        f"require '{PLUGIN}/includes/class-coachbridge-signer.php';"
        "echo json_encode(Coachbridge_Signer::sign($argv[1], 'POST',"
        " '/api/v1/enrollments/3/messages', array('view' => 'a b', 'x' => 'é'),"
        ' \'{"text":"hi"}\', 17));'
    )
    result = subprocess.run(
        [php, "-r", script, secret], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout)

    runtime = make_runtime(api={"secrets": [secret]})
    app = Flask(__name__)
    app.extensions[EXTENSION_KEY] = runtime
    with app.test_request_context(
        "/api/v1/enrollments/3/messages?x=%C3%A9&view=a+b",
        method="POST",
        data='{"text":"hi"}',
        headers=headers,
    ):
        from flask import request

        assert verify_request(runtime, request) == 17


def _run_build(tmp_path: Path, path_env: str) -> zipfile.ZipFile:
    copy = tmp_path / "wp_plugin_stub"
    shutil.copytree(PLUGIN, copy, ignore=shutil.ignore_patterns("build"))
    result = subprocess.run(
        ["sh", str(copy / "build.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": path_env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return zipfile.ZipFile(copy / "build" / "coachbridge.zip")


def _check_archive(archive: zipfile.ZipFile) -> None:
    names = archive.namelist()
    files = [name for name in names if not name.endswith("/")]
    assert all(name.startswith("coachbridge/") for name in names), names
    expected = {
        "coachbridge/" + str(path.relative_to(PLUGIN))
        for path in PLUGIN_PHP_FILES
        if "build" not in path.relative_to(PLUGIN).parts
    }
    assert expected <= set(files)
    assert "coachbridge/assets/coachbridge.js" in files
    assert "coachbridge/build.sh" not in files


@pytest.mark.skipif(shutil.which("zip") is None, reason="the zip command is missing")
def test_build_zip_with_zip_command(tmp_path):
    _check_archive(_run_build(tmp_path, os.environ["PATH"]))


def test_build_zip_with_python(tmp_path):
    # A PATH with the tools build.sh needs, but without zip.
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("sh", "cp", "rm", "mkdir", "dirname"):
        found = shutil.which(tool)
        assert found is not None, f"{tool} is missing"
        (tools / tool).symlink_to(found)
    (tools / "python3").symlink_to(sys.executable)
    _check_archive(_run_build(tmp_path, str(tools)))


def _write_vectors() -> None:
    text = json.dumps(build_vectors(), indent=2, ensure_ascii=False) + "\n"
    VECTORS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-vectors"]:
        sys.exit("usage: python tests/test_plugin.py --write-vectors")
    _write_vectors()
