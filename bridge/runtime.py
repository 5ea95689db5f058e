"""The objects a running service shares: configuration, databases, clock, chance.

One ``Runtime`` is built at start and handed to the web app, the scheduler and
the command line. Tests build their own with a fixed clock or random generator.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.config import Config
from bridge.db import Database, create_wordpress_engine
from bridge.errors import ConfigError
from sync.reader import WordPressReader

log = logging.getLogger(__name__)

SITE_ZONE_CACHE_SECONDS = 300


def utc_clock() -> dt.datetime:
    """Return the current instant, time-zone aware, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Runtime:
    """Shared state of one coachbridge process."""

    config: Config
    db: Database
    wordpress_reader: WordPressReader | None = None
    clock: Callable[[], dt.datetime] = utc_clock
    rng: random.Random = field(default_factory=random.SystemRandom)
    _zone: dt.tzinfo | None = field(default=None, init=False, repr=False)
    _zone_read_at: float = field(default=0.0, init=False, repr=False)
    _zone_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False
    )

    @classmethod
    def from_config(cls, config: Config) -> Runtime:
        """Build the runtime: engines are created here, connections on first use."""
        db = Database.from_url(config.state.database_url)
        reader = None
        if config.wordpress.database_url:
            engine = create_wordpress_engine(config.wordpress.database_url)
            reader = WordPressReader(engine, config.wordpress.table_prefix)
        return cls(config=config, db=db, wordpress_reader=reader)

    @property
    def wordpress(self) -> WordPressReader:
        """Return the WordPress reader, or raise when none is configured."""
        if self.wordpress_reader is None:
            raise ConfigError(
                "no WordPress database configured: set wordpress.database_url "
                "or COACHBRIDGE_WORDPRESS_DATABASE_URL"
            )
        return self.wordpress_reader

    def now(self) -> dt.datetime:
        """Return the current instant (aware, UTC) from the runtime's clock."""
        return self.clock()

    def site_zone(self) -> dt.tzinfo:
        """Return the site's time zone, read from WordPress and cached briefly."""
        from rules.calendar import site_zone

        with self._zone_lock:
            fresh = time.monotonic() - self._zone_read_at < SITE_ZONE_CACHE_SECONDS
            if self._zone is not None and fresh:
                return self._zone
            if self.wordpress_reader is None:
                self._zone = dt.UTC
            else:
                settings = self.wordpress_reader.site_time()
                self._zone = site_zone(settings.timezone_string, settings.gmt_offset)
            self._zone_read_at = time.monotonic()
            return self._zone

    def today(self) -> dt.date:
        """Return today's date in the site's time zone."""
        return self.now().astimezone(self.site_zone()).date()

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()
        if self.wordpress_reader is not None:
            self.wordpress_reader.engine.dispose()
