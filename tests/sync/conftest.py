"""WordPress databases for the sync tests, on SQLite and on MariaDB."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from tests.wpsite import WordPressSite

BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Name of the database backend that the test runs on."""
    return request.param


@pytest.fixture
def make_site(
    backend: str, request: pytest.FixtureRequest, tmp_path
) -> Iterator[Callable[..., WordPressSite]]:
    """Create WordPress databases with their tables on the test's backend."""
    engines: list[sa.Engine] = []

    def make(prefix: str = "wp_") -> WordPressSite:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path}/wordpress-{len(engines)}.sqlite3"
        else:
            url = request.getfixturevalue("mysql_database_factory")("wp")
        engine = sa.create_engine(url)
        engines.append(engine)
        site = WordPressSite(engine, prefix=prefix)
        site.create_schema()
        return site

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def site(make_site: Callable[..., WordPressSite]) -> WordPressSite:
    """Empty WordPress database with the default ``wp_`` prefix."""
    return make_site()
