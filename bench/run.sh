#!/usr/bin/env bash
# Benchmarks, side by side in one run on one throwaway cluster.
#
#   sudo bench/run.sh [realtime] [consume]  (DURATION=20 ROUNDS=3 CLIENTS=8)
#
# realtime: the seeds' insert workload into tbl(a, b, ts, direct),
#   (a) plain insert, (b) session_stream's C trigger in pair mode,
#   (c) the seeds' PL/pgSQL trigger; prints tps and ratios to (a).
# consume: 1M messages consumed by the seeds' read-and-burn method and by
#   consume_window(); then insert tps with and without deferred mode's
#   additions to the source table.
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
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

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

# Milliseconds a SQL file takes, by psql's \timing.
elapsed_ms() {
    sql -c '\timing on' -f "$bench_dir/$1" | awk '/^Time: / { ms = $2 } END { printf "%.0f", ms }'
}

# consume: 1M messages, 100 agents x 1M customers, consumed once by the
# seeds' read-and-burn method and once by consume_window(); then insert
# tps into the deferred-mode table against the same table without what
# deferred mode adds.
consume() {
    local seeds_ms ours_ms seeds_rate ours_rate sessions_seeds sessions_ours
    sql -f "$bench_dir/consume_setup.sql"
    seeds_ms=$(elapsed_ms consume_seeds.sql)
    ours_ms=$(elapsed_ms consume_window.sql)
    seeds_rate=$(awk -v ms="$seeds_ms" 'BEGIN { printf "%.0f", 1000000 / (ms / 1000) }')
    ours_rate=$(awk -v ms="$ours_ms" 'BEGIN { printf "%.0f", 1000000 / (ms / 1000) }')
    sessions_seeds=$(sql -Atc 'SELECT count(*) FROM tbl_result')
    sessions_ours=$(sql -Atc 'SELECT count(*) FROM deferred_sessions')

    echo
    echo "consume 1M messages (100 agents x 1M customers), one call each"
    row "method" "msg/s" "ratio"
    row "seeds' read-and-burn + PL/pgSQL (${seeds_ms} ms)" "$seeds_rate" "1.00"
    row "consume_window() (${ours_ms} ms)" "$ours_rate" "$(ratio "$ours_rate" "$seeds_rate")"
    echo "  sessions: seeds $sessions_seeds, consume_window $sessions_ours"

    local plain deferred variant
    declare -A runs=()
    for round in $(seq "$ROUNDS"); do
        for variant in plain deferred; do
            sql -f "$bench_dir/consume_insert_$variant.sql"
            runs[$variant]+="$(tps consume_insert.sql) "
        done
    done
    plain=$(echo "${runs[plain]}" | median)
    deferred=$(echo "${runs[deferred]}" | median)
    echo
    echo "insert into the source, $CLIENTS clients, median of $ROUNDS x ${DURATION}s"
    row "table" "tps" "ratio"
    row "tbl(a, b, ts, direct) + ts index" "$plain" "1.00"
    row "+ txid default and BRIN(txid)" "$deferred" "$(ratio "$deferred" "$plain")"
    for variant in plain deferred; do
        echo "  runs $variant: ${runs[$variant]}"
    done
}

for w in $workloads; do
    "$w"
done
rm -rf "$bench_dir"
