#!/usr/bin/env bash
# Benchmarks, side by side in one run on one throwaway cluster.
#
#   sudo bench/run.sh [realtime]     (DURATION=20 ROUNDS=3 CLIENTS=8 to change)
#
# realtime: the seeds' insert workload into tbl(a, b, ts, direct),
#   (a) plain insert, (b) session_stream's C trigger in pair mode,
#   (c) the seeds' PL/pgSQL trigger; prints tps and ratios to (a).
# Server settings are PostgreSQL's defaults but for shared_buffers and
# max_connections; BENCH_SETTINGS adds more ("synchronous_commit=off").
# Not a test: nothing here fails on speed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/common.sh
. "$here/scripts/common.sh"

DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-8}
JOBS=${JOBS:-$CLIENTS}
workloads=${*:-realtime}

install_packages
build_and_install "$here"
start_throwaway_cluster "max_connections = 50" "shared_buffers = 512MB" ${BENCH_SETTINGS:-}
bench_dir=$(mktemp -d /tmp/session_stream_bench.XXXXXX)
cp "$here"/bench/*.sql "$bench_dir"/
[ "$(id -u)" -eq 0 ] && chown -R "$TEST_USER" "$bench_dir"
sql -c 'CREATE EXTENSION session_stream'

# pgbench a script for DURATION seconds; print its tps.
tps() {
    sql -c CHECKPOINT
    as_test_user pgbench -U postgres -n -M prepared -c "$CLIENTS" -j "$JOBS" \
        -T "$DURATION" -f "$bench_dir/$1" 2>&1 |
        awk '/^tps = / { printf "%.0f", $3 }'
}

row() { printf '%-44s %8s %7s\n' "$1" "$2" "$3"; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { printf "%.2f", x / y }'; }

# The median of a list of numbers.
median() { tr ' ' '\n' | sort -g | awk 'NF { v[++n] = $1 } END { print v[int((n + 1) / 2)] }'; }

# Run the variants in turn, ROUNDS times, so that drift of the machine
# (disk, neighbours) spreads over all of them; report each one's median.
realtime() {
    local round variant
    declare -A runs=()
    for round in $(seq "$ROUNDS"); do
        for variant in plain c_trigger plpgsql; do
            sql -f "$bench_dir/realtime_$variant.sql"
            runs[$variant]+="$(tps realtime_insert.sql) "
        done
    done
    local plain c_trigger plpgsql
    plain=$(echo "${runs[plain]}" | median)
    c_trigger=$(echo "${runs[c_trigger]}" | median)
    plpgsql=$(echo "${runs[plpgsql]}" | median)

    echo
    echo "realtime insert: 10 agents x 10k customers, $CLIENTS clients, median of $ROUNDS x ${DURATION}s"
    row "variant" "tps" "ratio"
    row "(a) plain insert into tbl" "$plain" "1.00"
    row "(b) track_sessions('pair', ...) C trigger" "$c_trigger" "$(ratio "$c_trigger" "$plain")"
    row "(c) seeds' PL/pgSQL trigger" "$plpgsql" "$(ratio "$plpgsql" "$plain")"
    for variant in plain c_trigger plpgsql; do
        echo "  runs $variant: ${runs[$variant]}"
    done
}

for w in $workloads; do
    "$w"
done
rm -rf "$bench_dir"
