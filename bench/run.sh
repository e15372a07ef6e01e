#!/usr/bin/env bash
# Benchmarks, side by side in one run on one throwaway cluster.
#
#   bench/run.sh [realtime] [consume] [backlog] [feed] [reports] [continuous] [shards]
#                (DURATION=20 ROUNDS=3 CLIENTS=8)
#
# realtime: the seeds' insert workload into tbl(a, b, ts, direct),
#   (a) plain insert, (b) session_stream's C trigger in pair mode,
#   (c) the seeds' PL/pgSQL trigger; prints tps and ratios to (a).  For
#   scale, (a1) adds to (a) the (b, ts) index (b) requires and (a2) an
#   empty PL/pgSQL row trigger on top of (a1); REALTIME_VARIANTS="plain
#   c_trigger" runs only those (plain is the reference).  Then
#   the results' bloat: pair_sessions' heap + index bytes right after the
#   last (b) run against the same table after VACUUM FULL.
# consume: 1M messages consumed by the seeds' read-and-burn method, by
#   consume_window() and by an expert's window-function query (into a
#   plain table, and into one with a partial unique index), first call on
#   empty results and on top of 4M consumed, interleaved rounds, medians
#   (see consume() below); then insert tps with and without deferred
#   mode's additions to the source table.
# reports: response_times() against the same reports written by hand in
#   SQL (percentile_cont(), avg(), max(), date_bin(), GROUP BY) over 3M
#   sessions of a results set: by day, by day and responder, by day in
#   business time; first each pair's rows compared, then ROUNDS
#   interleaved rounds of the six queries, each after a CHECKPOINT.
# backlog: 10M messages waiting (BACKLOG=), caught up by repeated
#   consume_window(max_messages => 1M); time and peak memory per call.
# feed: the seeds' upsert workload into feed(id, c1..c12), 10M ids,
#   (a) plain upsert, (b) evaluate_rules() with 1 rule (c2 > 9999, about
#   1 write in 10k alerts), (c) with 10 rules, (d) the seeds' PL/pgSQL
#   trigger; prints tps and ratios to (a).  Then alerts/s delivered end to
#   end to session_stream_listen when every row alerts.
# continuous: realtime's workload into (a) the plain table, (b) the same
#   with the C trigger in pair mode, (c) deferred mode consumed by the
#   continuous consumer every 100 ms; interleaved rounds, each run after a
#   CHECKPOINT, with max_wal_size at 20GB for all three (no checkpoint
#   mid-run); tps and ratios to (a), every run printed; for (c) the
#   delay from a message's commit to its session showing (p50, p99), from
#   a probe client inserting and waiting alongside the writers.
# shards: insert tps straight into a shard (database shard0 of the
#   cluster, realtime customer mode) against the same inserts through a
#   coordinator (this database, attach_shards('{shard0}'), postgres_fdw
#   over the unix socket): single-row statements, and 10-row statements
#   with postgres_fdw's batch_size 1 (the default) and 10.  Interleaved
#   rounds; the shard is emptied before every run.
# Server settings are PostgreSQL's defaults but for shared_buffers and
# max_connections (and, for consume's timed runs only, max_wal_size and
# checkpoint_timeout); BENCH_SETTINGS adds more ("synchronous_commit=off").
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

row() { printf '%-44s %8s %7s %7s\n' "$1" "$2" "$3" "${4:-}"; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { printf "%.2f", x / y }'; }

# The median of a list of numbers.
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Run each variant's setup (PREFIX_VARIANT.sql), then SCRIPT under pgbench,
# variant after variant, ROUNDS times, so that drift of the machine (disk,
# neighbours) spreads over all of them.  Every run's tps goes to
# RUNS[variant], the median to MEDIAN[variant].
declare -A RUNS MEDIAN
run_rounds() {
    local prefix=$1 script=$2 round variant
    shift 2
    RUNS=()
    MEDIAN=()
    for round in $(seq "$ROUNDS"); do
        for variant in "$@"; do
            sql -f "$bench_dir/${prefix}_$variant.sql" >/dev/null
            RUNS[$variant]+="$(tps "$script") "
            # a variant may look at what its run left behind
            if declare -F "after_${prefix}_$variant" >/dev/null; then
                "after_${prefix}_$variant"
            fi
        done
    done
    for variant in "$@"; do
        MEDIAN[$variant]=$(echo "${RUNS[$variant]}" | median)
    done
}

# The median, over the rounds, of VARIANT's tps over REFERENCE's in the same
# round: drift of the machine between rounds cancels out of it.
paired_ratio() {
    local variant=$1 reference=$2
    paste -d ' ' <(echo "${RUNS[$variant]}" | tr ' ' '\n' | grep -v '^$') \
                 <(echo "${RUNS[$reference]}" | tr ' ' '\n' | grep -v '^$') |
        awk '{ printf "%f ", $1 / $2 }' | median | awk '{ printf "%.2f", $1 }'
}

# A table of tps: its header, then one row per variant against REFERENCE.
tps_header() {
    echo "tps: median of the rounds; ratio: of the medians; paired: median of the rounds' own ratios"
    row "variant" "tps" "ratio" "paired"
}
tps_row() {
    local label=$1 variant=$2 reference=$3
    row "$label" "${MEDIAN[$variant]}" "$(ratio "${MEDIAN[$variant]}" "${MEDIAN[$reference]}")" \
        "$(paired_ratio "$variant" "$reference")"
}

print_runs() {
    local variant
    for variant in "$@"; do
        echo "  runs $variant: ${RUNS[$variant]}"
    done
}

# Heap + index bytes of the realtime results: pair_sessions' storage
# tables (RESULTS_TABLES), summed.
RESULTS_TABLES="'session_stream.pair_sessions_closed', 'session_stream.pair_sessions_latest'"
results_bytes() {
    sql -Atc "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(ARRAY[$RESULTS_TABLES]) t"
}

# Right after each C-trigger run (server defaults, autovacuum as it comes,
# no manual VACUUM): the results' size; the last run's is kept.
after_realtime_c_trigger() {
    RESULTS_AFTER_RUN=$(results_bytes)
    RESULTS_ROWS=$(sql -Atc 'SELECT count(*) FROM session_stream.pair_sessions')
    RESULTS_PARTS=$(results_parts)
}

# Each relation's bytes: the tables' heaps and their indexes.
results_parts() {
    sql -Atc "SELECT string_agg(c.relname || ' ' || pg_relation_size(c.oid), ', ' ORDER BY c.relname)
                FROM pg_class c
               WHERE c.oid = ANY (ARRAY[$RESULTS_TABLES]::regclass[])
                  OR c.oid IN (SELECT indexrelid FROM pg_index
                                WHERE indrelid = ANY (ARRAY[$RESULTS_TABLES]::regclass[]))"
}

realtime() {
    local variants=" ${REALTIME_VARIANTS:-plain index empty_trigger c_trigger plpgsql} "
    [[ $variants == *" plain "* ]] || { echo "REALTIME_VARIANTS must include plain, the reference" >&2; exit 1; }
    # shellcheck disable=SC2086 # one word per variant
    run_rounds realtime realtime_insert.sql $variants
    echo
    echo "realtime insert: 10 agents x 10k customers, $CLIENTS clients, median of $ROUNDS x ${DURATION}s"
    tps_header
    realtime_row() { [[ $variants != *" $2 "* ]] || tps_row "$1" "$2" plain; }
    realtime_row "(a) plain insert into tbl" plain
    realtime_row "(a1) + the (b, ts) index (b) requires" index
    realtime_row "(a2) + an empty PL/pgSQL AFTER ROW trigger" empty_trigger
    realtime_row "(b) track_sessions('pair', ...) C trigger" c_trigger
    realtime_row "(c) seeds' PL/pgSQL trigger" plpgsql
    # shellcheck disable=SC2086
    print_runs $variants
    [[ $variants == *" c_trigger "* ]] || return 0

    # The (c) runs since do not touch pair_sessions: compact it now.
    sql -c "VACUUM FULL $(echo "$RESULTS_TABLES" | tr -d "'")" >/dev/null
    local compact
    compact=$(results_bytes)
    echo
    echo "results after the last (b) run: $RESULTS_ROWS sessions"
    row "pair_sessions heap + indexes" "bytes" "ratio"
    row "right after the run" "$RESULTS_AFTER_RUN" "$(ratio "$RESULTS_AFTER_RUN" "$compact")"
    row "after VACUUM FULL" "$compact" "1.00"
    echo "  right after the run: $RESULTS_PARTS"
    echo "  after VACUUM FULL:   $(results_parts)"
}

# Milliseconds a SQL file takes, by psql's \timing.
elapsed_ms() {
    sql -c '\timing on' -f "$bench_dir/$1" | awk '/^Time: / { ms = $2 } END { printf "%.0f", ms }'
}

# consume: the batch of 1M messages (100 agents x 1M customers) consumed
# by each method, in two states (bench/consume_setup.sql): "first", empty
# results, and "steady", the batch on top of 4M consumed before.  Every
# variant runs with the same settings: max_wal_size large enough that no
# run checkpoints (the checkpoints during timed runs are counted and
# printed), its tables vacuumed (CONSUME_RESET) and a CHECKPOINT before
# each run, ROUNDS
# interleaved rounds, each run rolled back (bench/consume_timed.sql).  The
# first round compares every variant's sessions with the expert's window
# query over the same messages.  Then insert tps into the deferred-mode
# table against the same table without what deferred mode adds.
# What each run starts from: its tables vacuumed, and emptied where the
# state wants them empty (TRUNCATE, not VACUUM: the seeds' trigger plans
# its lookups as on a new table, with the index, as in their setup).
declare -A CONSUME_RESET=(
    [first_seeds]="TRUNCATE tbl_result, tbl_mid; VACUUM tbl"
    [steady_seeds]="VACUUM tbl, tbl_mid, tbl_result"
    [first_expert_plain]="TRUNCATE window_plain; VACUUM expert_messages"
    [first_expert_unique]="TRUNCATE window_unique; VACUUM expert_messages"
    [first_ours_first]="VACUUM deferred_first, first_sessions_closed, first_sessions_latest, session_stream.consumed_windows"
    [steady_ours_steady]="VACUUM deferred_tbl, deferred_sessions_closed, deferred_sessions_latest, session_stream.consumed_windows"
)
CONSUME_CHECKPOINTS=0

checkpoints() { sql -Atc 'SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter'; }

# One timed run of VARIANT in STATE: its ms go to RUNS[STATE_VARIANT];
# with CHECK=on its check line is printed.
consume_run() {
    local state=$1 variant=$2 check=$3 script sessions source=none reference out before ms
    local -a statements
    case $variant in
        seeds) script=consume_seeds.sql sessions=seeds_sessions ;;
        expert_plain) script=consume_expert_plain.sql sessions=window_plain ;;
        expert_unique) script=consume_expert_unique.sql sessions=window_unique ;;
        ours_first) script=consume_window.sql sessions=first_sessions_compared source=deferred_first ;;
        ours_steady) script=consume_window.sql sessions=deferred_sessions_compared source=deferred_tbl ;;
    esac
    reference=${state}_reference
    out="$bench_dir/consume_run.out"
    # one -c per statement: VACUUM runs outside a transaction block
    local statement reset=()
    IFS=';' read -ra statements <<<"${CONSUME_RESET[${state}_$variant]}"
    for statement in "${statements[@]}"; do reset+=(-c "$statement"); done
    sql "${reset[@]}" -c CHECKPOINT >/dev/null
    before=$(checkpoints)
    sql -v script="$script" -v check="$check" -v sessions="$sessions" \
        -v reference="$reference" -v source="$source" \
        -f "$bench_dir/consume_timed.sql" >"$out"
    CONSUME_CHECKPOINTS=$((CONSUME_CHECKPOINTS + $(checkpoints) - before))
    ms=$(awk '/^Time: / { ms = $2 } END { printf "%.0f", ms }' "$out")
    RUNS[${state}_$variant]+="$ms "
    if [ "$check" = on ]; then
        echo "  check $state $variant: $(grep -o 'differences: .*sessions' "$out")"
    fi
}

consume_state() {
    local state=$1 round variant
    shift
    for round in $(seq "$ROUNDS"); do
        for variant in "$@"; do
            consume_run "$state" "$variant" "$([ "$round" = 1 ] && echo on || echo off)"
        done
    done
}

# msg/s of a median time in ms; the ratio of two variants' rates, of the
# medians and (paired) the median of the rounds' own.
consume_rate() { awk -v ms="$1" 'BEGIN { printf "%.0f", 1000000 / (ms / 1000) }'; }
consume_table() {
    local state=$1 variant
    shift
    for variant in "$@"; do
        MEDIAN[${state}_$variant]=$(echo "${RUNS[${state}_$variant]}" | median)
    done
    printf '%-44s %9s %9s %8s %8s\n' method "ms" "msg/s" "x seeds" paired
    for variant in "$@"; do
        local label=$variant key=${state}_$variant
        case $variant in
            seeds) label="seeds' read-and-burn + PL/pgSQL trigger" ;;
            expert_plain) label="window SQL into a plain table" ;;
            expert_unique) label="window SQL, partial unique index" ;;
            ours_*) label="consume_window()" ;;
        esac
        printf '%-44s %9s %9s %8s %8s\n' "$label" "${MEDIAN[$key]}" \
            "$(consume_rate "${MEDIAN[$key]}")" \
            "$(ratio "${MEDIAN[${state}_seeds]}" "${MEDIAN[$key]}")" \
            "$(paired_ratio "${state}_seeds" "$key")"
    done
    for variant in "$@"; do
        echo "  runs (ms) $variant: ${RUNS[${state}_$variant]}"
    done
}

consume() {
    # the same settings for every variant: no checkpoint mid-run
    sql -c "ALTER SYSTEM SET max_wal_size = '32GB'" \
        -c "ALTER SYSTEM SET checkpoint_timeout = '1h'" -c 'SELECT pg_reload_conf()' >/dev/null
    sql -q -f "$bench_dir/consume_setup.sql" >/dev/null
    RUNS=()
    MEDIAN=()
    CONSUME_CHECKPOINTS=0
    echo
    echo "consume the batch of 1M messages (100 agents x 1M customers), median of $ROUNDS rounds"
    consume_state first seeds ours_first expert_plain expert_unique
    # the seeds' steady state: tbl_result holds the earlier 4M's sessions
    sql -c 'TRUNCATE tbl_result' \
        -c 'INSERT INTO tbl_result SELECT customer_id, opened_at, coalesce(responder_id, -1), answered_at FROM earlier_reference' \
        -c 'VACUUM ANALYZE tbl_result' >/dev/null
    consume_state steady seeds ours_steady
    echo "first call, empty results:"
    consume_table first ours_first expert_plain expert_unique seeds
    echo "  consume_window() over the window SQL into a plain table: $(ratio "${MEDIAN[first_expert_plain]}" "${MEDIAN[first_ours_first]}") (paired $(paired_ratio first_expert_plain first_ours_first))"
    echo "steady state, the batch on top of 4M consumed:"
    consume_table steady ours_steady seeds
    echo "checkpoints during the timed runs: $CONSUME_CHECKPOINTS"
    # the workloads after this one run with the defaults again
    sql -c 'ALTER SYSTEM RESET max_wal_size' -c 'ALTER SYSTEM RESET checkpoint_timeout' \
        -c 'SELECT pg_reload_conf()' >/dev/null

    run_rounds consume_insert consume_insert.sql plain deferred
    echo
    echo "insert into the source, $CLIENTS clients, median of $ROUNDS x ${DURATION}s"
    tps_header
    tps_row "tbl(a, b, ts, direct) + ts index" plain plain
    tps_row "+ txid default and BRIN(txid)" deferred plain
    print_runs plain deferred
}

# The feed workload; see bench/feed_*.sql.
feed() {
    sql -f "$bench_dir/feed_setup.sql" >/dev/null
    run_rounds feed feed_upsert.sql plain rules_1 rules_10 plpgsql
    echo
    echo "feed upsert: 10M ids, c2 > 9999 on ~1 write in 10k, $CLIENTS clients, median of $ROUNDS x ${DURATION}s"
    tps_header
    tps_row "(a) plain upsert into feed" plain plain
    tps_row "(b) evaluate_rules(), 1 rule" rules_1 plain
    tps_row "(c) evaluate_rules(), 10 rules" rules_10 plain
    tps_row "(d) seeds' PL/pgSQL trigger, 1 rule" plpgsql plain
    print_runs plain rules_1 rules_10 plpgsql

    feed_end_to_end
}

# Every upsert alerts (rule 'true', delivery notify); session_stream_listen
# prints the alerts to a file.  Alerts/s = lines printed / time from the
# start of pgbench until the listener has caught up.
feed_end_to_end() {
    local out="$bench_dir/listen.out" pidfile="$bench_dir/listen.pid"
    local start end sent lines prev
    sql -f "$bench_dir/feed_every_row.sql" >/dev/null
    : >"$out"
    [ "$(id -u)" -eq 0 ] && chown "$TEST_USER" "$out" "$bench_dir"
    # the listener's own pid: signals to runuser do not reach it
    as_test_user sh -c "echo \$\$ >'$pidfile'; exec session_stream_listen 'host=$PGHOST port=$PGPORT user=postgres dbname=postgres' feed_every_row >'$out' 2>/dev/null" &
    sql -c CHECKPOINT
    sleep 1
    start=$(date +%s.%N)
    sent=$(as_test_user pgbench -U postgres -n -M prepared -c "$CLIENTS" -j "$JOBS" \
        -T "$DURATION" -f "$bench_dir/feed_upsert.sql" 2>&1 |
        awk '/^tps = / { printf "%.0f", $3 }')
    # wait until the listener stops printing
    prev=-1
    lines=$(wc -l <"$out")
    while [ "$lines" -ne "$prev" ]; do
        end=$(date +%s.%N)
        sleep 0.5
        prev=$lines
        lines=$(wc -l <"$out")
    done
    kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    wait
    echo
    echo "end to end: every upsert alerts by NOTIFY to session_stream_listen, $CLIENTS clients, ${DURATION}s"
    row "alerting upserts committed (tps)" "$sent" ""
    row "alerts printed by session_stream_listen" "$lines" ""
    row "alerts/s delivered end to end" "$(awk -v n="$lines" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }')" ""
}

# reports: 3M sessions written into a results set (bench/reports_setup.sql,
# which also keeps the hand-written reports as views); each
# response_times() report against its hand-written twin, first their rows
# (0 differences expected), then their times: the six queries in turn,
# ROUNDS times, each after a CHECKPOINT; every run printed.
reports() {
    local variant
    local variants="hand_day fn_day hand_agent fn_agent hand_calendar fn_calendar"
    sql -q -f "$bench_dir/reports_setup.sql" >/dev/null
    sql -c 'CHECKPOINT'
    echo
    echo "reports over 3M sessions (1M customers x 3, 100 agents, 30 days), response_times() against the same report by hand:"
    sql -q -f "$bench_dir/reports_check.sql"
    RUNS=()
    MEDIAN=()
    for _ in $(seq "$ROUNDS"); do
        for variant in $variants; do
            sql -c CHECKPOINT
            RUNS[$variant]+="$(elapsed_ms "reports_$variant.sql") "
        done
    done
    for variant in $variants; do
        MEDIAN[$variant]=$(echo "${RUNS[$variant]}" | median)
    done
    echo "ms: median of $ROUNDS rounds; x: the hand-written query's time over response_times()'s (of the medians; paired: median of the rounds' own)"
    printf '%-32s %10s %10s %7s %7s\n' "report" "by hand" "function" "x" "paired"
    reports_row() {
        printf '%-32s %10s %10s %7s %7s\n' "$1" "${MEDIAN[hand_$2]}" "${MEDIAN[fn_$2]}" \
            "$(ratio "${MEDIAN[hand_$2]}" "${MEDIAN[fn_$2]}")" "$(paired_ratio "hand_$2" "fn_$2")"
    }
    reports_row "by day" day
    reports_row "by day and responder" agent
    reports_row "by day in business time" calendar
    # shellcheck disable=SC2086 # one word per variant
    print_runs $variants
}

# backlog: BACKLOG messages (default 10M, 100 agents x 1M customers) wait
# unconsumed; consume_window(max_messages => 1M) catches up call by call,
# each call in a new connection so that its backend's peak memory (VmHWM)
# is its own; then one call without max_messages on the same backlog.
backlog() {
    local total=${BACKLOG:-10000000} chunk=500000 done_rows=0 call=0
    local status messages ms pid hwm shm
    sql -c 'TRUNCATE session_stream.messages, session_stream.sessions_closed, session_stream.sessions_latest, session_stream.consumed_windows' \
        -c 'ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer'
    while [ "$done_rows" -lt "$total" ]; do
        sql -c "INSERT INTO session_stream.messages (agent_id, customer_id, sent_at, from_agent)
                SELECT 1 + (random() * 99)::int, 1 + (random() * 999999)::int,
                       clock_timestamp(), random() < 0.5
                  FROM generate_series(1, $chunk)"
        done_rows=$((done_rows + chunk))
    done
    sql -c 'VACUUM ANALYZE session_stream.messages' -c CHECKPOINT
    echo
    echo "backlog: $total messages waiting, consume_window(max_messages => 1000000) until empty"
    # VmHWM counts shared buffers the backend touched too: RssShmem says
    # how much of it that is at the end of the call
    printf '%-6s %-9s %10s %10s %12s %12s\n' call status messages ms "VmHWM kB" "RssShmem kB"
    while :; do
        call=$((call + 1))
        # one connection per call: print its pid, consume, then read the
        # backend's peak resident memory before it exits
        read -r status messages ms pid hwm shm < <(sql -At -F ' ' -c "
            SELECT status, messages, round(extract(epoch FROM elapsed) * 1000),
                   pg_backend_pid(),
                   (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'),
                                 'VmHWM:\s+(\d+)'))[1],
                   (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'),
                                 'RssShmem:\s+(\d+)'))[1]
              FROM session_stream.consume_window(max_messages => 1000000)")
        printf '%-6s %-9s %10s %10s %12s %12s\n' "$call" "$status" "$messages" "$ms" "$hwm" "$shm"
        [ "$status" = consumed ] || break
    done
    sql -At -c "SELECT 'total: ' || sum(messages) || ' messages in ' || round(sum(extract(epoch FROM elapsed))::numeric, 1) || ' s of consume_window() time'
                  FROM session_stream.consumed_windows"

    # the results against the independent replay (test/reference.sql),
    # replayed once into a table
    cp "$here/test/reference.sql" "$bench_dir/"
    [ "$(id -u)" -eq 0 ] && chown "$TEST_USER" "$bench_dir/reference.sql"
    sql -f "$bench_dir/reference.sql" >/dev/null
    sql -At -c "CREATE TABLE backlog_replay AS
                SELECT * FROM oracle.replay('customer',
                    'SELECT agent_id, customer_id, sent_at, from_agent FROM session_stream.messages')" \
        -c "SELECT 'sessions differing from the replay: ' || count(*) || ' (of ' ||
                   (SELECT count(*) FROM backlog_replay) || ')'
              FROM ((SELECT * FROM backlog_replay
                     EXCEPT ALL
                     SELECT customer_id, responder_id, opened_at, answered_at FROM session_stream.sessions)
                    UNION ALL
                    (SELECT customer_id, responder_id, opened_at, answered_at FROM session_stream.sessions
                     EXCEPT ALL
                     SELECT * FROM backlog_replay)) d"
}

# continuous: see the top of the file and bench/continuous_*.sql.
continuous() {
    local round variant probe_pid caught worker_pid worker_cpu
    sql -c "ALTER SYSTEM SET max_wal_size = '20GB'" -c 'SELECT pg_reload_conf()' >/dev/null
    sql -f "$bench_dir/continuous_setup.sql" >/dev/null
    RUNS=()
    MEDIAN=()
    CAUGHT=""
    WORKER_CPU=""
    for round in $(seq "$ROUNDS"); do
        for variant in plain c_trigger consumer; do
            sql -f "$bench_dir/continuous_$variant.sql" >/dev/null
            probe_pid=
            if [ "$variant" = consumer ]; then
                worker_pid=$(sql -Atc "SELECT pg_sleep(0.5);
                    SELECT pid FROM pg_stat_activity WHERE backend_type = 'session_stream consumer'" | tail -1)
                worker_cpu=$(cpu_ticks "$worker_pid")
                sql -c CHECKPOINT
                as_test_user pgbench -U postgres -n -M prepared -c 1 -j 1 -T "$DURATION" \
                    -f "$bench_dir/continuous_probe.sql" >/dev/null 2>&1 &
                probe_pid=$!
            fi
            RUNS[$variant]+="$(tps realtime_insert.sql) "
            if [ -n "$probe_pid" ]; then
                wait "$probe_pid"
                sql -c "UPDATE probe_delays SET round = $round WHERE round IS NULL"
                # the writers are done: how long until nothing is pending
                caught=$(sql -Atc "SELECT wait_caught_up()")
                CAUGHT+="$caught; "
                WORKER_CPU+="$(awk -v a="$worker_cpu" -v b="$(cpu_ticks "$worker_pid")" -v hz="$(getconf CLK_TCK)" \
                    'BEGIN { printf "%.1f", (b - a) / hz }') "
            fi
        done
    done
    for variant in plain c_trigger consumer; do
        MEDIAN[$variant]=$(echo "${RUNS[$variant]}" | median)
    done
    sql -c "ALTER SYSTEM RESET max_wal_size" -c 'SELECT pg_reload_conf()' >/dev/null

    echo
    echo "continuous: realtime insert (10 agents x 10k customers, $CLIENTS clients), median of $ROUNDS x ${DURATION}s"
    tps_header
    tps_row "(a) plain insert into tbl" plain plain
    tps_row "(b) track_sessions('pair', ...) C trigger" c_trigger plain
    tps_row "(c) deferred + start_consumer(every 100 ms)" consumer plain
    print_runs plain c_trigger consumer
    echo "(c) delay from commit to the session showing (probe client, polls every 5 ms):"
    sql -At -F ' ' -c "SELECT 'all runs: ' || count(*) || ' probes, p50 ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))
                              || ' ms, p99 ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))
                              || ' ms, max ' || round(max(ms)) || ' ms'
                         FROM probe_delays" \
        -c "SELECT '  round ' || round || ': ' || count(*) || ' probes, p50 ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))
                   || ' ms, p99 ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)) || ' ms'
              FROM probe_delays GROUP BY round ORDER BY round"
    echo "  after each (c) run, once the writers stopped: ${CAUGHT}"
    echo "  the consumer's CPU seconds in each (c) run (+ its catch-up), of ${DURATION}s x 2 cores: ${WORKER_CPU}"
}

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# shards: see the top.  The shard and the coordinator are two databases
# of this one cluster, so they share its 2 cores: the coordinator's cost
# shows as fewer tps, it is not hidden by a second machine's CPUs.
shards_run() {
    local db=$1 script=$2
    as_test_user psql -X -q -v ON_ERROR_STOP=1 -U postgres -d shard0 \
        -f "$bench_dir/shards_reset.sql" >/dev/null
    sql -c CHECKPOINT
    as_test_user pgbench -U postgres -d "$db" -n -M prepared -c "$CLIENTS" -j "$JOBS" \
        -T "$DURATION" -f "$bench_dir/$script" 2>&1 |
        awk '/^tps = / { printf "%.0f", $3 }'
}

shards() {
    local round variant
    sql -c 'SET client_min_messages = warning' -c 'DROP DATABASE IF EXISTS shard0' \
        -c 'CREATE DATABASE shard0'
    as_test_user psql -X -q -v ON_ERROR_STOP=1 -U postgres -d shard0 \
        -c 'CREATE EXTENSION session_stream'
    sql -v host="$PGHOST" -v port="$PGPORT" -f "$bench_dir/shards_setup.sql" >/dev/null
    RUNS=()
    MEDIAN=()
    for round in $(seq "$ROUNDS"); do
        RUNS[direct]+="$(shards_run shard0 shards_direct.sql) "
        RUNS[coordinator]+="$(shards_run postgres shards_coordinator.sql) "
        RUNS[direct_10]+="$(shards_run shard0 shards_direct_10.sql) "
        sql -c "ALTER SERVER shard0 OPTIONS (ADD batch_size '1')" >/dev/null
        RUNS[coordinator_10]+="$(shards_run postgres shards_coordinator_10.sql) "
        sql -c "ALTER SERVER shard0 OPTIONS (SET batch_size '10')" >/dev/null
        RUNS[coordinator_10b]+="$(shards_run postgres shards_coordinator_10.sql) "
        sql -c "ALTER SERVER shard0 OPTIONS (DROP batch_size)" >/dev/null
    done
    for variant in direct coordinator direct_10 coordinator_10 coordinator_10b; do
        MEDIAN[$variant]=$(echo "${RUNS[$variant]}" | median)
    done
    echo
    echo "shards: insert into one shard, $CLIENTS clients, median of $ROUNDS x ${DURATION}s; shard and coordinator share this cluster"
    tps_header
    tps_row "(a) 1 row/statement straight into the shard" direct direct
    tps_row "(b) 1 row/statement through the coordinator" coordinator direct
    tps_row "(c) 10 rows/statement straight into the shard" direct_10 direct_10
    tps_row "(d) 10 rows through the coordinator, batch 1" coordinator_10 direct_10
    tps_row "(e) 10 rows through the coordinator, batch 10" coordinator_10b direct_10
    print_runs direct coordinator direct_10 coordinator_10 coordinator_10b
    sql -c 'DROP SCHEMA session_stream_cluster CASCADE' -c 'DROP SERVER shard0 CASCADE' \
        -c 'DROP DATABASE shard0' >/dev/null 2>&1
}

for w in $workloads; do
    "$w"
done
rm -rf "$bench_dir"
