"""Read-only access to the WordPress and MemberPress side of a coaching site.

``sync.reader`` reads users, memberships and access grants from the WordPress MySQL
database, ``sync.webhooks`` parses MemberPress webhook bodies, and ``sync.schema``
defines the tables. Nothing in this package writes to WordPress's tables.
"""

from sync.reader import (
    Grant,
    Membership,
    SiteTime,
    WordPressReader,
    WordPressUnavailable,
    WPUser,
    grants_access,
)
from sync.schema import WordPressTables, wordpress_tables
from sync.webhooks import Delivery, InvalidPayload, event_is_actionable, parse_delivery

__all__ = [
    "Delivery",
    "Grant",
    "InvalidPayload",
    "Membership",
    "SiteTime",
    "WPUser",
    "WordPressReader",
    "WordPressTables",
    "WordPressUnavailable",
    "event_is_actionable",
    "grants_access",
    "parse_delivery",
    "wordpress_tables",
]
