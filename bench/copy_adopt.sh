#!/bin/bash
# What adopt_replicated_rows() costs a server that is no subscriber: COPY of
# 1M rows into session_stream.messages (deferred: realtime trigger disabled)
# with the trigger and without it (COPY does not batch rows into a table with
# a BEFORE INSERT row trigger).  Run as root:
#   flock -x /tmp/bench.lock env PG_CONFIG=... PGPORT=... bash bench/copy_adopt.sh
# (it uses the extension installed in PG_CONFIG's tree; three rounds).
set -e
BIN=$(${PG_CONFIG:-pg_config} --bindir)
PORT=${PGPORT:-54343}
D=${TMPDIR:-/tmp}/ss-copy-adopt
rm -rf $D; mkdir -p $D; chown postgres $D
runuser -u postgres -- $BIN/initdb -D $D/data -A trust >/dev/null
runuser -u postgres -- $BIN/pg_ctl -D $D/data -o "-p $PORT -k $D -c max_wal_size=8GB -c shared_buffers=512MB" -l $D/log start >/dev/null
P="runuser -u postgres -- $BIN/psql -h $D -p $PORT -X -q -d postgres"
$P -c "CREATE EXTENSION session_stream" -c "ALTER TABLE session_stream.messages DISABLE TRIGGER track_sessions_customer"
$P -c "COPY (SELECT 1 + i % 100, i % 1000000, timestamptz '2024-01-01' + i * interval '1 ms', i % 2 = 0 FROM generate_series(1, 1000000) i) TO '$D/rows.csv' CSV"
for round in 1 2 3; do
  for variant in with without; do
    if [ $variant = without ]; then $P -c "ALTER TABLE session_stream.messages DISABLE TRIGGER adopt_replicated_rows" ; fi
    if [ $variant = without ]; then $P -c "DROP TRIGGER adopt_replicated_rows ON session_stream.messages"; fi
    $P -c "TRUNCATE session_stream.messages" -c "CHECKPOINT"
    t=$( { $P -c '\timing on' -c "COPY session_stream.messages (agent_id, customer_id, sent_at, from_agent) FROM '$D/rows.csv' CSV" | grep Time; } )
    echo "round $round $variant adopt trigger: $t"
    if [ $variant = without ]; then
      $P -c "CREATE TRIGGER adopt_replicated_rows BEFORE INSERT OR UPDATE OR DELETE ON session_stream.messages FOR EACH ROW EXECUTE FUNCTION session_stream.adopt_replicated_rows()" -c "ALTER TABLE session_stream.messages ENABLE REPLICA TRIGGER adopt_replicated_rows"
    fi
  done
done
runuser -u postgres -- $BIN/pg_ctl -D $D/data stop >/dev/null
