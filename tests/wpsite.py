"""Test-side name of the WordPress database builder, which lives in the package."""

from bridge.wpsite import (  # noqa: F401
    WORDPRESS_MYSQL_DDL,
    ZERO_DATE,
    NewTransaction,
    NewUser,
    WordPressSite,
)
