"""Start and stop the browser tests' WordPress site and bridge, and act on them.

``start_site()`` runs ``tests/e2e/site.sh create``, serves the site with PHP's
built-in server and runs ``coachbridge serve`` on free loopback ports. Its
``finally`` block stops both servers and drops the site's database, so a failed
test leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

try:
    from playwright.sync_api import expect
except ImportError:
    # missing_prerequisites() names the package, so the tests skip, or fail
    # under CI, with that reason instead of an import error.
    expect = None  # type: ignore[assignment]

E2E_DIR = Path(__file__).resolve().parent
REPO_DIR = E2E_DIR.parents[1]
SITE_SCRIPT = E2E_DIR / "site.sh"
MEMBERPRESS_SCRIPT = E2E_DIR / "php" / "memberpress.php"
SCREENSHOT_DIR = E2E_DIR / "screenshots"
WORDPRESS_TREE = Path("/usr/share/wordpress")
THEME_DIR = WORDPRESS_TREE / "wp-content" / "themes" / "twentytwentyone"

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach
# Google's hosts, which this machine's closed network refuses. Playwright adds
# --headless and a fresh profile folder itself.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

MYSQL_HOST = os.environ.get("CBE2E_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("CBE2E_MYSQL_PORT", "3306"))

# Seconds to wait for a server to respond after it starts, and for bridge to
# process a webhook. Both are generous because the two cores are shared.
START_TIMEOUT = 60.0
INBOX_TIMEOUT = 30.0

PROGRAM_TITLE = "Strength in 12 weeks"
MILESTONE_TITLE = "Book the kickoff call"
HABIT_TITLE = "Strength session"
COHORT_NAME = "Rolling with Zoë"
COACH_NAME = "Zoë Martin"


def missing_prerequisites() -> list[str]:
    """Return what the browser tests need but cannot find, as readable phrases."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Chromium at {CHROMIUM} (Debian package chromium)")
    for command in ("php", "mysql"):
        if shutil.which(command) is None:
            missing.append(f"the {command} command")
    if shutil.which("php") is not None and not _php_has_mysqli():
        missing.append("PHP's mysqli extension (Debian package php-mysql)")
    if not (WORDPRESS_TREE / "wp-settings.php").is_file():
        missing.append(f"WordPress in {WORDPRESS_TREE} (Debian package wordpress)")
    if not THEME_DIR.is_dir():
        missing.append(f"the theme in {THEME_DIR}")
    if not _mysql_answers():
        missing.append(f"a MariaDB server at {MYSQL_HOST}:{MYSQL_PORT}")
    return missing


def _php_has_mysqli() -> bool:
    modules = subprocess.run(
        ["php", "-m"], capture_output=True, text=True, check=False
    ).stdout
    return "mysqli" in modules.split()


def _mysql_answers() -> bool:
    try:
        with socket.create_connection((MYSQL_HOST, MYSQL_PORT), timeout=3):
            return True
    except OSError:
        return False


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s until it is true, for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def http_status(url: str) -> int | None:
    """Return the HTTP status of a GET, or None when nothing responds."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@dataclass
class Server:
    """A server process started in the background, with its output in a log file."""

    name: str
    command: list[str]
    ready_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO_DIR,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._ready, START_TIMEOUT, f"{self.name} at {self.ready_url}")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with status {self.process.returncode}:\n"
                + tail(self.log_path)
            )
        return http_status(self.ready_url) == 200

    def stop(self) -> None:
        """Stop the server and every process it started, politely first."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 15)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
            self.process.wait(timeout=10)


def tail(path: Path, lines: int = 40) -> str:
    """Return the last lines of a log, without PHP's connection lines."""
    if not path.exists():
        return f"({path} does not exist)"
    kept = [
        line
        for line in path.read_text(errors="replace").splitlines()
        if not line.endswith((" Accepted", " Closing"))
    ]
    return "\n".join(kept[-lines:])


@dataclass
class Site:
    """The running WordPress site and bridge, with the facts the tests need."""

    workdir: Path
    url: str
    account_url: str
    membership_id: int
    membership_url: str
    unassigned_membership: dict[str, Any]
    password: str
    users: dict[str, int]
    bridge_url: str
    bridge_config: Path
    wordpress_server: Server
    bridge_server: Server

    @property
    def docroot(self) -> Path:
        return self.workdir / "wordpress"

    def coaching_url(self, **params: str) -> str:
        query = "".join(f"&{name}={quote(value)}" for name, value in params.items())
        return f"{self.account_url}?action=coaching{query}"

    def buy(self, login: str, membership_id: int | None = None) -> int:
        """Buy a membership for ``login`` and wait until bridge has the webhook.

        The membership defaults to the one that the loaded program is sold by.
        """
        membership = membership_id or self.membership_id
        output = self._memberpress("buy", login, str(membership))
        self.wait_for_inbox()
        return int(output.strip())

    def refund(self, transaction_id: int) -> None:
        """Refund a transaction, send its webhook and wait for bridge to process it."""
        self._memberpress("refund", str(transaction_id))
        self.wait_for_inbox()

    def _memberpress(self, *arguments: str) -> str:
        completed = subprocess.run(
            ["php", str(MEMBERPRESS_SCRIPT), str(self.docroot), *arguments],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"memberpress.php {' '.join(arguments)} failed: {completed.stderr}"
            )
        return completed.stdout

    def wait_for_inbox(self) -> None:
        """Wait until bridge has processed every stored webhook delivery."""

        def inbox_empty() -> bool:
            inbox = get_json(f"{self.bridge_url}/healthz")["inbox"]
            if inbox["failed"]:
                raise RuntimeError(
                    f"bridge failed to process a webhook: {inbox}\n"
                    + tail(self.bridge_server.log_path)
                )
            return inbox["pending"] == 0

        wait_until(inbox_empty, INBOX_TIMEOUT, "bridge to process the webhooks")

    def enrollments(self) -> list[dict[str, Any]]:
        """Return the output of ``coachbridge enrollments --json``."""
        completed = subprocess.run(
            [*bridge_command(self.bridge_config), "enrollments", "--json"],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_DIR,
            timeout=60,
        )
        return json.loads(completed.stdout)

    @contextlib.contextmanager
    def bridge_stopped(self) -> Iterator[None]:
        """Stop bridge for the duration of the block, then start it again."""
        self.bridge_server.stop()
        try:
            yield
        finally:
            self.bridge_server.start()


def bridge_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "bridge.cli", "--config", str(config)]


@contextlib.contextmanager
def start_site(workdir: Path) -> Iterator[Site]:
    """Create the site and bridge in ``workdir``, yield them, then remove both."""
    site_port, bridge_port = free_port(), free_port()
    site_url = f"http://127.0.0.1:{site_port}"
    bridge_url = f"http://127.0.0.1:{bridge_port}"
    site_dir = workdir / "site"
    shared_secret = secrets.token_urlsafe(24)
    webhook_key = secrets.token_urlsafe(24)
    servers: list[Server] = []
    _run_site_script("sweep")
    try:
        _run_site_script(
            "create",
            str(site_dir),
            site_url,
            bridge_url,
            env={
                "CBE2E_SHARED_SECRET": shared_secret,
                "CBE2E_WEBHOOK_KEY": webhook_key,
            },
        )
        facts = json.loads((site_dir / "site.json").read_text())
        config = _write_bridge_config(
            workdir, site_dir, shared_secret=shared_secret, webhook_key=webhook_key
        )
        _prepare_bridge(workdir, config, facts)

        wordpress = Server(
            name="WordPress (php -S)",
            command=["bash", str(SITE_SCRIPT), "serve", str(site_dir)],
            ready_url=f"{site_url}/wp-login.php",
            log_path=workdir / "php-server.log",
        )
        bridge = Server(
            name="bridge (coachbridge serve)",
            command=[*bridge_command(config), "serve", "--port", str(bridge_port)],
            ready_url=f"{bridge_url}/healthz",
            log_path=workdir / "bridge.log",
        )
        for server in (wordpress, bridge):
            servers.append(server)
            server.start()

        yield Site(
            workdir=site_dir,
            url=site_url,
            account_url=facts["account_url"],
            membership_id=facts["membership"]["id"],
            membership_url=facts["membership"]["url"],
            unassigned_membership=facts["unassigned_membership"],
            password=facts["password"],
            users=facts["users"],
            bridge_url=bridge_url,
            bridge_config=config,
            wordpress_server=wordpress,
            bridge_server=bridge,
        )
    finally:
        for server in reversed(servers):
            server.stop()
        # Keep PHP's error log beside bridge's, in pytest's temporary folder.
        errors = site_dir / "php-errors.log"
        if errors.exists():
            shutil.copy(errors, workdir / errors.name)
        _run_site_script("drop", str(site_dir))


def _run_site_script(*arguments: str, env: dict[str, str] | None = None) -> None:
    completed = subprocess.run(
        ["bash", str(SITE_SCRIPT), *arguments],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHON": sys.executable, **(env or {})},
        timeout=300,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"site.sh {arguments[0]} failed with status {completed.returncode}:\n"
            f"{completed.stdout}{completed.stderr}"
        )


def _write_bridge_config(
    workdir: Path, site_dir: Path, *, shared_secret: str, webhook_key: str
) -> Path:
    database = (site_dir / "database").read_text().strip()
    config = workdir / "bridge.toml"
    config.write_text(
        f"""\
[state]
database_url = "sqlite:///{workdir / "state.sqlite3"}"

[wordpress]
database_url = "mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{database}"

[webhooks]
keys = ["{webhook_key}"]

[api]
secrets = ["{shared_secret}"]

[scheduler]
# Process webhooks within a second, so tests wait briefly after a purchase.
inbox_interval_seconds = 1
""",
        encoding="utf-8",
    )
    return config


def _prepare_bridge(workdir: Path, config: Path, facts: dict[str, Any]) -> None:
    """Create bridge's tables and load one program sold by the site's membership."""
    coach_id = facts["users"]["coach"]
    programs = workdir / "programs.toml"
    programs.write_text(
        f"""\
[[coaches]]
wp_user_id = {coach_id}

[[programs]]
slug = "strength"
title = "{PROGRAM_TITLE}"
memberships = [{facts["membership"]["id"]}]

[[programs.milestones]]
title = "{MILESTONE_TITLE}"
due = "3 days"

[[programs.habits]]
title = "{HABIT_TITLE}"
schedule = "daily"
length = "12 weeks"

[[programs.cohorts]]
name = "{COHORT_NAME}"
type = "rolling"
coach = {coach_id}
""",
        encoding="utf-8",
    )
    for arguments in (["db", "upgrade"], ["programs", "load", str(programs)]):
        completed = subprocess.run(
            [*bridge_command(config), *arguments],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"coachbridge {' '.join(arguments)} failed: {completed.stderr}"
            )


def log_in(page: Any, site: Site, login: str, then: str | None = None) -> None:
    """Log in through wp-login.php and wait for the page WordPress redirects to."""
    target = then or f"{site.url}/wp-admin/"
    page.goto(f"/wp-login.php?redirect_to={quote(target, safe='')}")
    page.fill("#user_login", login)
    page.fill("#user_pass", site.password)
    page.click("#wp-submit")
    page.wait_for_url(lambda url: "wp-login.php" not in url)


def tick(page: Any, checkbox: Any) -> None:
    """Check a box on bridge's page and wait for the plugin's proxy to accept it."""
    with page.expect_response("**/wp-json/coachbridge/v1/proxy") as response:
        checkbox.check()
    assert response.value.status == 200, response.value.text()
    # The plugin's script disables the box while the request is in flight.
    expect(checkbox).to_be_enabled()


def save_screenshot(page: Any, name: str, scroll_to: Any = None) -> Path:
    """Save the page's viewport as tests/e2e/screenshots/NAME.png.

    ``scroll_to`` is a Locator to scroll to the top of the viewport first.
    """
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    if scroll_to is not None:
        scroll_to.evaluate("element => element.scrollIntoView()")
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path))
    return path
