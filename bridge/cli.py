"""The ``coachbridge`` command line."""

from __future__ import annotations

import errno
import json
import logging
import socket
import sys
from pathlib import Path

import click
import sqlalchemy as sa

from bridge.config import Config, load_config
from bridge.errors import CoachbridgeError, ConfigError
from bridge.logs import configure_logging
from bridge.runtime import Runtime
from sync.reader import WordPressUnavailable

log = logging.getLogger(__name__)

# Errors of binding a listening socket that the user can fix: the port is taken,
# the address is not on this host, or the port needs privileges.
LISTEN_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})
# The WordPress tables that the reader queries.
# The files that 'coachbridge demo' writes into its folder, SQLite's side files
# included. The demo deletes its folder on every run, so it rejects a folder
# that contains anything else.
DEMO_FILES = frozenset(
    f"{name}{suffix}"
    for name in ("state.sqlite3", "wordpress.sqlite3")
    for suffix in ("", "-wal", "-shm", "-journal")
) | {"programs.toml"}


class _State:
    """Shared state of the command group: the config path, read lazily."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
            configure_logging(self._config.logging)
            # Alembic logs its plugins and context at INFO on every schema check.
            logging.getLogger("alembic").setLevel(logging.WARNING)
        return self._config

    def runtime(self) -> Runtime:
        return Runtime.from_config(self.config())


pass_state = click.make_pass_decorator(_State)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="COACHBRIDGE_CONFIG",
    help="TOML configuration file (default: $COACHBRIDGE_CONFIG, else built-in "
    "defaults).",
)
@click.version_option(package_name="coachbridge")
@click.pass_context
def cli(context: click.Context, config_path: str | None) -> None:
    """Coaching programs, cohorts and progress for MemberPress sites."""
    context.obj = _State(config_path)


@cli.command()
@click.option("--host", help="Address to listen on (default: server.host).")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="TCP port (default: server.port)."
)
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Serve HTTP only, for extra web processes beside one with the scheduler.",
)
@pass_state
def serve(
    state: _State, host: str | None, port: int | None, threads: int, no_scheduler: bool
) -> None:
    """Run the web app and the scheduled jobs."""
    from bridge.app import create_app
    from bridge.server import serve_forever

    config = state.config()
    runtime = state.runtime()
    _require_schema(runtime)
    app = create_app(runtime=runtime)
    scheduler = None
    if config.scheduler.enabled and not no_scheduler:
        from bridge.scheduler import start_scheduler

        scheduler = start_scheduler(runtime)
    host = host or config.server.host
    port = port or config.server.port
    try:
        serve_forever(app, host, port, threads)
    except OSError as error:
        _raise_if_cannot_listen(error, host, port, "--port or server.port")
        raise
    finally:
        if scheduler is not None:
            scheduler.shutdown()
        runtime.close()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_state
def sync(state: _State, as_json: bool) -> None:
    """Reconcile every member's enrollments with WordPress now."""
    from bridge.reconcile import reconcile_all

    runtime = state.runtime()
    _require_schema(runtime)
    _require_wordpress_tables(runtime)
    total = runtime.wordpress.count_members()
    show_bar = not as_json and sys.stderr.isatty()
    with click.progressbar(
        length=total, label="Reconciling members", file=sys.stderr, hidden=not show_bar
    ) as bar:
        summary = reconcile_all(runtime, progress=bar.update)
    runtime.close()
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
    else:
        for name, value in summary.as_dict().items():
            click.echo(f"{name.replace('_', ' ')}: {value}")
    if summary.errors:
        sys.exit(1)


@cli.group()
def db() -> None:
    """Manage the state database schema."""


@db.command()
@pass_state
def upgrade(state: _State) -> None:
    """Create the state tables or upgrade them to this version."""
    from bridge.migrate import current_revision, upgrade

    runtime = state.runtime()
    try:
        upgrade(runtime.db.engine)
    except sa.exc.DBAPIError as error:
        raise _state_database_error(runtime, error) from None
    click.echo(f"state database at revision {current_revision(runtime.db.engine)}")
    runtime.close()


@db.command("rebuild-summaries")
@pass_state
def rebuild_summaries(state: _State) -> None:
    """Recompute the habit tick summaries from the ticks.

    The nightly evaluation reads these summaries, which every tick through
    bridge keeps current. Run this after changing habit_ticks by other means.
    """
    from bridge.tick_summaries import rebuild_all

    runtime = state.runtime()
    _require_schema(runtime)
    try:
        written = rebuild_all(runtime)
    except sa.exc.DBAPIError as error:
        raise _state_database_error(runtime, error) from None
    click.echo(f"rebuilt {written} habit tick summaries")
    runtime.close()


@cli.group()
def programs() -> None:
    """Manage coaching programs."""


@programs.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_state
def programs_load(state: _State, path: Path) -> None:
    """Create or update programs, cohorts and coaches from a TOML or JSON file."""
    from bridge.programs_file import load_programs_file

    runtime = state.runtime()
    _require_schema(runtime)
    if runtime.wordpress_reader is not None:
        _require_wordpress_tables(runtime)
    result = load_programs_file(runtime, path)
    runtime.close()
    for line in result.lines():
        click.echo(line)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one array).")
@pass_state
def enrollments(state: _State, as_json: bool) -> None:
    """List every enrollment."""
    from bridge.enrollment import list_enrollments

    runtime = state.runtime()
    _require_schema(runtime)
    rows = list_enrollments(runtime)
    runtime.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        click.echo(
            f"{row['wp_user_id']:>8}  {row['program']:<24} {row['cohort']:<24} "
            f"{row['status']:<9} {row['start_date']}"
        )


@cli.command()
@click.option("--once", is_flag=True, help="Exit after printing the summary.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="TCP port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("coachbridge-demo"),
    show_default=True,
    help="Folder for the demo's SQLite databases, deleted and recreated on each "
    "run: a new or empty folder, or an earlier demo's.",
)
def demo(once: bool, port: int, workdir: Path) -> None:
    """Run a self-contained demo site on 127.0.0.1, no configuration needed."""
    from bridge.demo import run_demo

    _require_demo_folder(workdir)
    try:
        run_demo(workdir=workdir, port=port, once=once)
    except OSError as error:
        _raise_if_cannot_listen(error, "127.0.0.1", port, "--port")
        raise


def _require_demo_folder(workdir: Path) -> None:
    """Raise unless ``workdir`` is missing or contains only files of a demo."""
    if not workdir.exists():
        return
    if Path.cwd().resolve().is_relative_to(workdir.resolve()):
        raise CoachbridgeError(
            f"--dir {workdir} is the working directory or contains it. The demo "
            "deletes and recreates its folder, so give another one, such as "
            "coachbridge-demo"
        )
    if workdir.is_symlink():
        raise CoachbridgeError(
            f"--dir {workdir} is a symbolic link. The demo deletes and recreates "
            "its folder, so give it a real folder"
        )
    others = sorted(
        entry.name
        for entry in workdir.iterdir()
        if entry.name not in DEMO_FILES or not entry.is_file()
    )
    if others:
        listed = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise CoachbridgeError(
            f"--dir {workdir} contains files that the demo did not create "
            f"({listed}). The demo deletes its folder on every run: choose a new "
            "or empty folder"
        )


def _raise_if_cannot_listen(error: OSError, host: str, port: int, option: str) -> None:
    """Raise CoachbridgeError when ``error`` means the server could not listen."""
    if isinstance(error, socket.gaierror) or error.errno in LISTEN_ERRNOS:
        raise CoachbridgeError(
            f"cannot listen on {host}:{port}: {error.strerror}. Choose another "
            f"address or port with {option}, or stop the process that uses it"
        ) from None


def _state_database_error(runtime: Runtime, error: sa.exc.DBAPIError) -> ConfigError:
    where = runtime.db.engine.url.render_as_string(hide_password=True)
    return ConfigError(
        f"cannot open the state database {where}: {error.orig}. Check "
        "state.database_url (or COACHBRIDGE_STATE_DATABASE_URL) and that the "
        "database server is running"
    )


def _require_wordpress_tables(runtime: Runtime) -> None:
    """Raise ConfigError when WordPress tables are missing, as after a wrong prefix.

    Raises WordPressUnavailable when the WordPress database cannot be reached.
    """
    reader = runtime.wordpress
    missing = reader.missing_tables()
    if missing:
        raise ConfigError(
            f"WordPress tables not found: {', '.join(missing)}. Set "
            "wordpress.table_prefix to the $table_prefix of wp-config.php (now "
            f"{reader.tables.prefix!r}), and check that MemberPress is installed"
        )


def _require_schema(runtime: Runtime) -> None:
    from bridge.migrate import current_revision, head_revision

    # Connecting to SQLite would create an empty file at a mistyped path.
    database = runtime.db.engine.url.database or ":memory:"
    if runtime.db.is_sqlite and database != ":memory:" and not Path(database).exists():
        raise CoachbridgeError(
            f"the state database file {database} does not exist: check "
            "state.database_url, or run 'coachbridge db upgrade' first to create it"
        )
    try:
        current = current_revision(runtime.db.engine)
    except sa.exc.DBAPIError as error:
        raise _state_database_error(runtime, error) from None
    if current != head_revision():
        raise CoachbridgeError(
            f"the state database is at revision {current or 'none'}, this version "
            f"needs {head_revision()}: run 'coachbridge db upgrade' first"
        )


def main() -> None:
    """Run the command line; exit 2 on a service error, 3 when WordPress is down."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except CoachbridgeError as error:
        click.echo(f"error: {error.message}", err=True)
        sys.exit(2)
    except WordPressUnavailable as error:
        click.echo(
            f"error: {error} The URL is set by wordpress.database_url or "
            "COACHBRIDGE_WORDPRESS_DATABASE_URL.",
            err=True,
        )
        sys.exit(3)


if __name__ == "__main__":
    main()
