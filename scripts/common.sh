# Shared steps of scripts/test.sh, scripts/demo.sh and bench/run.sh.

PG_MAJOR=${PG_MAJOR:-15}
# PG_CONFIG may point at another installation (a private copy, another build).
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
PG_BIN=$(dirname "$PG_CONFIG")
TEST_USER=${TEST_USER:-postgres}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: server, headers and PGXS, TAP test modules, pg_cron,
# libpq headers for session_stream_listen.
install_packages() {
    local pkgs="make gcc postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-client-$PG_MAJOR libipc-run-perl postgresql-$PG_MAJOR-cron libpq-dev"
    # shellcheck disable=SC2086
    if ! dpkg -s $pkgs >/dev/null 2>&1; then
        as_root apt-get update -qq
        # shellcheck disable=SC2086
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
    fi
}

build_and_install() {
    make -C "$1" -s PG_CONFIG="$PG_CONFIG"
    as_root make -C "$1" -s PG_CONFIG="$PG_CONFIG" install
}

# Run a command as the unprivileged test user (ourselves unless root).
as_test_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$TEST_USER" -- env PATH="$PG_BIN:$PATH" "$@"
    else
        env PATH="$PG_BIN:$PATH" "$@"
    fi
}

# Root cannot run the servers: give the test user a private copy of the tree.
copy_tree_for_test_user() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$1"
        return
    fi
    local dir
    dir=$(mktemp -d /tmp/session_stream.XXXXXX)
    cp -a "$1/." "$dir/"
    chown -R "$TEST_USER" "$dir"
    echo "$dir"
}

# A throwaway cluster owned by the test user: initdb in a temporary
# directory, a private socket directory and port, no TCP.  Sets PGHOST,
# PGPORT, PGDATABASE and CLUSTER_DIR; stop_throwaway_cluster removes it.
start_throwaway_cluster() {
    CLUSTER_DIR=$(mktemp -d /tmp/session_stream_pg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown "$TEST_USER" "$CLUSTER_DIR"
    export PGHOST=$CLUSTER_DIR PGPORT=${PGPORT:-54329} PGDATABASE=postgres
    as_test_user initdb -D "$CLUSTER_DIR/data" -A trust -U postgres >/dev/null
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$CLUSTER_DIR'"
        echo "port = $PGPORT"
        for setting in "$@"; do echo "$setting"; done
    } >>"$CLUSTER_DIR/data/postgresql.conf"
    as_test_user pg_ctl -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null
    trap stop_throwaway_cluster EXIT
}

stop_throwaway_cluster() {
    if [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR" ]; then
        as_test_user pg_ctl -D "$CLUSTER_DIR/data" -m fast stop >/dev/null 2>&1 || true
        rm -rf "$CLUSTER_DIR"
    fi
}

# psql against the throwaway cluster, quiet and stopping at the first error.
sql() {
    as_test_user psql -X -q -v ON_ERROR_STOP=1 -U postgres "$@"
}
