"""Configuration loading: defaults, files, environment secrets and rejections."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.errors import ConfigError

REPOSITORY = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "coachbridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file():
    config = load_config(environ={})
    assert config.state.database_url == "sqlite:///coachbridge.sqlite3"
    assert config.wordpress.database_url is None
    assert config.wordpress.table_prefix == "wp_"
    assert config.scheduler.reconcile_interval_minutes == 15
    assert config.coaching.off_track_threshold == 3


def test_example_file_is_valid_with_real_secrets():
    environ = {
        "COACHBRIDGE_WEBHOOK_KEYS": "k3y-0123456789abcdef",
        "COACHBRIDGE_API_SECRETS": "s3cret-0123456789abcdef",
    }
    config = load_config(REPOSITORY / "config.example.toml", environ=environ)
    assert config.wordpress.table_prefix == "wp_"
    assert config.webhook_keys() == ["k3y-0123456789abcdef"]


def test_example_placeholders_rejected():
    with pytest.raises(ConfigError) as raised:
        load_config(REPOSITORY / "config.example.toml", environ={})

    message = raised.value.message
    assert "webhooks.keys: a key is the example's placeholder" in message
    assert "api.secrets: a secret is the example's placeholder" in message
    assert "secrets.token_urlsafe" in message


@pytest.mark.parametrize("scheme", ["mysql", "mariadb", "mysql+mysqldb"])
def test_database_url_without_pymysql_rejected(tmp_path, scheme):
    path = write(tmp_path, f'[wordpress]\ndatabase_url = "{scheme}://root@db/wp"\n')

    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})

    assert "wordpress.database_url" in raised.value.message
    assert "mysql+pymysql://" in raised.value.message


def test_example_file_lists_every_key():
    text = (REPOSITORY / "config.example.toml").read_text(encoding="utf-8")
    config = load_config(environ={})
    for section_name, section in config:
        if section_name == "demo":
            continue
        assert f"[{section_name}]" in text
        for key in type(section).model_fields:
            assert f"\n{key} = " in text or f"\n# {key} = " in text, (
                f"{section_name}.{key} missing from config.example.toml"
            )


def test_file_path_from_environment(tmp_path):
    path = write(tmp_path, '[wordpress]\ntable_prefix = "wpx_"\n')
    config = load_config(environ={"COACHBRIDGE_CONFIG": str(path)})
    assert config.wordpress.table_prefix == "wpx_"


def test_environment_secrets_override_file(tmp_path):
    path = write(
        tmp_path,
        '[webhooks]\nkeys = ["file-key-0123456789"]\n'
        '[wordpress]\ndatabase_url = "mysql+pymysql://file@db/wp"\n',
    )
    environ = {
        "COACHBRIDGE_WEBHOOK_KEYS": "env-key-0123456789a, env-key-0123456789b",
        "COACHBRIDGE_WORDPRESS_DATABASE_URL": "mysql+pymysql://env@db/wp",
        "COACHBRIDGE_API_SECRETS": "api-secret-0123456789",
    }
    config = load_config(path, environ=environ)
    assert config.webhook_keys() == ["env-key-0123456789a", "env-key-0123456789b"]
    assert config.wordpress.database_url == "mysql+pymysql://env@db/wp"
    assert config.api.secrets[0].get_secret_value() == "api-secret-0123456789"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[wordpress]\nprefix = 'wp_'\n", "wordpress.prefix: unknown key"),
        ("[nonsense]\na = 1\n", "nonsense: unknown key"),
        ("[scheduler]\nreconcile_interval_minutes = 0\n", "reconcile_interval_minutes"),
        ("[scheduler]\nreconcile_interval_minutes = 'often'\n", "valid integer"),
        ("[wordpress]\ntable_prefix = 'wp-; DROP'\n", "wordpress.table_prefix"),
        ("[state]\ndatabase_url = 'postgres://x'\n", "sqlite://"),
        ("[logging]\nlevel = 'LOUD'\n", "logging.level"),
        ("[webhooks]\nkeys = ['short']\n", "at least 16 characters"),
        ("[webhooks]\nmax_body_bytes = 10\n", "webhooks.max_body_bytes"),
        ("demo = true\n", "demo mode is set by 'coachbridge demo' only"),
    ],
    ids=[
        "unknown-key",
        "unknown-section",
        "interval-zero",
        "interval-text",
        "bad-prefix",
        "bad-url-scheme",
        "bad-level",
        "short-key",
        "tiny-body-limit",
        "demo-from-file",
    ],
)
def test_invalid_values_are_rejected(tmp_path, text, expected):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text), environ={})
    assert expected in raised.value.message


def test_secret_values_are_hidden_in_errors(tmp_path):
    path = write(tmp_path, "[webhooks]\nkeys = ['tiny-secret']\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert "tiny-secret" not in raised.value.message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml", environ={})


def test_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[state\n"), environ={})


def test_non_utf8_file(tmp_path):
    path = tmp_path / "coachbridge.toml"
    path.write_bytes(b'[server]\nhost = "caf\xe9"\n')

    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})

    assert str(path) in raised.value.message
    assert "UTF-8" in raised.value.message


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path, environ={})

    assert str(tmp_path) in raised.value.message
    assert "directory" in raised.value.message


@pytest.mark.parametrize(
    "key",
    ["clé-0123456789abcdef", "0123456789abcdef ", "0123456789\tabcdef", " " * 16],
    ids=["accent", "trailing-space", "tab", "spaces-only"],
)
def test_webhook_key_outside_printable_ascii(tmp_path, key):
    path = write(tmp_path, f"[webhooks]\nkeys = [{key!r}]\n".replace("'", '"'))

    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})

    assert "webhooks.keys" in raised.value.message
    assert "printable ASCII" in raised.value.message
    assert key not in raised.value.message


def test_webhook_key_from_environment_checked():
    environ = {"COACHBRIDGE_WEBHOOK_KEYS": "clé-0123456789abcdef"}

    with pytest.raises(ConfigError, match="printable ASCII"):
        load_config(environ=environ)


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite+pysqlite://"]
)
def test_in_memory_state_database_rejected(tmp_path, url):
    path = write(tmp_path, f'[state]\ndatabase_url = "{url}"\n')

    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})

    assert "state.database_url" in raised.value.message
    assert "in-memory" in raised.value.message


@pytest.mark.parametrize("section", ["state", "wordpress"])
@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://reader:s3cret-pw@db:notaport/wp",
        "mysql+pymysql://reader@[::1/wp",
    ],
    ids=["port-not-a-number", "unclosed-bracket"],
)
def test_unparsable_database_url_rejected(tmp_path, section, url):
    path = write(tmp_path, f'[{section}]\ndatabase_url = "{url}"\n')

    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})

    assert f"{section}.database_url" in raised.value.message
    assert "cannot be parsed" in raised.value.message
    assert "s3cret-pw" not in raised.value.message
