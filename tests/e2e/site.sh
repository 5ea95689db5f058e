#!/usr/bin/env bash
# Build a throwaway WordPress site with the coachbridge plugin for browser tests.
#
#   site.sh install                         Debian packages: WordPress, PHP, Chromium
#   site.sh create DIR SITE_URL BRIDGE_URL  new database, files, install, plugins
#   site.sh serve DIR                       PHP's built-in server, in the foreground
#   site.sh drop DIR                        drop the database and delete DIR
#   site.sh sweep                           drop cbe2e_* databases older than 6 hours
#
# create needs CBE2E_SHARED_SECRET (the plugin's secret, also in bridge's
# api.secrets) and CBE2E_WEBHOOK_KEY (also in bridge's webhooks.keys). SITE_URL
# must be http://127.0.0.1:PORT, and serve listens on that port. The site's
# facts (database, users, pages, membership id) are written to DIR/site.json.
# MariaDB is reached as root without a password at CBE2E_MYSQL_HOST (default
# 127.0.0.1) and CBE2E_MYSQL_PORT (default 3306).
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$E2E_DIR/../.." && pwd)"
WORDPRESS_TREE=/usr/share/wordpress
THEME=twentytwentyone
PACKAGES=(wordpress "wordpress-theme-$THEME" php-cli php-mysql chromium fonts-dejavu-core)
MYSQL_HOST="${CBE2E_MYSQL_HOST:-127.0.0.1}"
MYSQL_PORT="${CBE2E_MYSQL_PORT:-3306}"
PYTHON="${PYTHON:-python3}"

die() {
    echo "site.sh: $*" >&2
    exit 1
}

mysql_root() {
    mysql --host="$MYSQL_HOST" --port="$MYSQL_PORT" --user=root "$@"
}

install_packages() {
    local missing=()
    local package
    for package in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
            missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "site.sh: packages already installed: ${PACKAGES[*]}"
        return
    fi
    echo "site.sh: installing ${missing[*]}"
    apt-get update -qq
    # The wordpress package pulls in Apache as its web server, but the tests use
    # PHP's built-in server and never start Apache.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

random_token() {
    head -c 48 /dev/urandom | base64 | tr -d '\n/+='
}

write_wp_config() {
    local docroot="$1" database="$2" site_url="$3" dir="$4"
    local name
    {
        echo "<?php"
        echo "// Written by tests/e2e/site.sh for a throwaway test site."
        echo "define( 'DB_NAME', '$database' );"
        echo "define( 'DB_USER', 'root' );"
        echo "define( 'DB_PASSWORD', '' );"
        echo "define( 'DB_HOST', '$MYSQL_HOST:$MYSQL_PORT' );"
        echo "define( 'DB_CHARSET', 'utf8mb4' );"
        echo "define( 'DB_COLLATE', '' );"
        for name in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY \
            AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
            echo "define( '$name', '$(random_token)' );"
        done
        echo "\$table_prefix = 'wp_';"
        echo "define( 'WP_HOME', '$site_url' );"
        echo "define( 'WP_SITEURL', '$site_url' );"
        echo "define( 'WP_ENVIRONMENT_TYPE', 'local' );"
        # WordPress 6.1 on PHP 8.2 logs many deprecation notices under
        # WP_DEBUG, so only warnings and errors go to the log.
        echo "define( 'WP_DEBUG', false );"
        echo "ini_set( 'log_errors', '1' );"
        echo "ini_set( 'error_log', '$dir/php-errors.log' );"
        # The machine has no route to wordpress.org: block outside requests so
        # update and news checks fail at once instead of waiting for a timeout.
        # Requests to the site's own host, where bridge listens, stay allowed.
        echo "define( 'WP_HTTP_BLOCK_EXTERNAL', true );"
        echo "define( 'AUTOMATIC_UPDATER_DISABLED', true );"
        echo "define( 'DISABLE_WP_CRON', true );"
        echo "define( 'FS_METHOD', 'direct' );"
        echo "if ( ! defined( 'ABSPATH' ) ) {"
        echo "    define( 'ABSPATH', __DIR__ . '/' );"
        echo "}"
        echo "require_once ABSPATH . 'wp-settings.php';"
    } >"$docroot/wp-config.php"
}

copy_wordpress() {
    local docroot="$1"
    [ -f "$WORDPRESS_TREE/wp-settings.php" ] ||
        die "$WORDPRESS_TREE/wp-settings.php is missing; run 'site.sh install' first"
    # A private copy, because Debian's wp-config.php reads /etc/wordpress and
    # the tests must not touch system configuration.
    cp -a "$WORDPRESS_TREE" "$docroot"
    rm -f "$docroot/wp-config.php"
    cp -a "$REPO_DIR/wp_plugin_stub" "$docroot/wp-content/plugins/coachbridge"
    rm -rf "$docroot/wp-content/plugins/coachbridge/build"
    cp -a "$E2E_DIR/memberpress-standin" "$docroot/wp-content/plugins/memberpress-standin"
    write_mepr_schema "$docroot/wp-content/plugins/memberpress-standin/schema.sql"
}

write_mepr_schema() {
    # The stand-in creates MemberPress's tables with the statements bridge's
    # own tests use, so both sides agree on the columns.
    (cd "$REPO_DIR" && "$PYTHON" - "$1") <<'PY'
import sys

from bridge.wpsite import WORDPRESS_MYSQL_DDL

statements = [ddl for ddl in WORDPRESS_MYSQL_DDL("wp_") if "`wp_mepr_" in ddl]
with open(sys.argv[1], "w", encoding="utf-8") as schema:
    schema.write(";\n".join(statements) + ";\n")
PY
}

create_site() {
    local dir="$1" site_url="$2" bridge_url="$3"
    [ -n "${CBE2E_SHARED_SECRET:-}" ] || die "CBE2E_SHARED_SECRET is missing: set it to the secret listed in bridge's api.secrets"
    [ -n "${CBE2E_WEBHOOK_KEY:-}" ] || die "CBE2E_WEBHOOK_KEY is missing: set it to the key listed in bridge's webhooks.keys"
    [[ "$site_url" =~ ^http://127\.0\.0\.1:[0-9]+$ ]] ||
        die "SITE_URL must be http://127.0.0.1:PORT, got '$site_url'"
    [ ! -e "$dir/site.json" ] || die "$dir already contains a site; run 'site.sh drop $dir' first"

    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local database
    database="cbe2e_$(date +%s)_$$"
    echo "$database" >"$dir/database"
    echo "$site_url" >"$dir/url"
    mysql_root -e "CREATE DATABASE \`$database\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci"

    copy_wordpress "$dir/wordpress"
    write_wp_config "$dir/wordpress" "$database" "$site_url" "$dir"
    php "$E2E_DIR/php/setup-site.php" "$dir/wordpress" install
    CBE2E_BRIDGE_URL="$bridge_url" \
        php "$E2E_DIR/php/setup-site.php" "$dir/wordpress" configure >"$dir/site.json.tmp"
    mv "$dir/site.json.tmp" "$dir/site.json"
    echo "site.sh: $site_url is ready in $dir (database $database)"
}

serve_site() {
    local dir="$1"
    [ -f "$dir/site.json" ] || die "no site in $dir; run 'site.sh create' first"
    local site_url
    site_url="$(cat "$dir/url")"
    # Several workers, so that a page that waits for bridge does not hold up
    # the browser's requests for styles and scripts.
    export PHP_CLI_SERVER_WORKERS="${PHP_CLI_SERVER_WORKERS:-4}"
    exec php -S "${site_url#http://}" -t "$dir/wordpress" "$E2E_DIR/php/router.php"
}

drop_site() {
    local dir="$1"
    if [ -f "$dir/database" ]; then
        local database
        database="$(cat "$dir/database")"
        [[ "$database" =~ ^cbe2e_[0-9_]+$ ]] || die "invalid database name '$database' in $dir/database: expected cbe2e_*"
        mysql_root -e "DROP DATABASE IF EXISTS \`$database\`"
    fi
    rm -rf "$dir"
}

sweep_databases() {
    # A test run that was killed could not drop its database. The name carries
    # its creation time, so databases older than any run are dropped here.
    local cutoff=$(($(date +%s) - 6 * 3600))
    local database created
    for database in $(mysql_root --batch --skip-column-names -e "SHOW DATABASES LIKE 'cbe2e\\_%'"); do
        created="${database#cbe2e_}"
        created="${created%%_*}"
        [[ "$created" =~ ^[0-9]+$ ]] || continue
        if [ "$created" -lt "$cutoff" ]; then
            mysql_root -e "DROP DATABASE \`$database\`"
            echo "site.sh: dropped $database, left behind by an earlier run"
        fi
    done
}

main() {
    local command="${1:-}"
    case "$command" in
    install)
        install_packages
        ;;
    create)
        [ "$#" -eq 4 ] || die "usage: site.sh create DIR SITE_URL BRIDGE_URL"
        create_site "$2" "$3" "$4"
        ;;
    serve)
        [ "$#" -eq 2 ] || die "usage: site.sh serve DIR"
        serve_site "$2"
        ;;
    drop)
        [ "$#" -eq 2 ] || die "usage: site.sh drop DIR"
        drop_site "$2"
        ;;
    sweep)
        sweep_databases
        ;;
    *)
        die "usage: site.sh install | create DIR SITE_URL BRIDGE_URL | serve DIR | drop DIR | sweep"
        ;;
    esac
}

main "$@"
