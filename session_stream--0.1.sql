/* session_stream--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION session_stream" to load this file. \quit

-- Every object and operator below is schema-qualified so that the script
-- means the same whatever search_path the installing role has.

-- The id of the inserting (top-level) transaction, as bigint: the default
-- of a source's txid column, by which consume_window() finds new rows.
CREATE FUNCTION session_stream.current_txid()
RETURNS bigint
AS 'MODULE_PATHNAME', 'ss_current_txid'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- What current_txid() and consumer positions add to the server's 64-bit
-- transaction ids.  0 until a restore brings consumer positions from a
-- cluster whose ids were ahead of this one's; then it is raised so that
-- every later id is above them (raise_txid_base() below).  Per database,
-- never dumped: a restore computes its own.
CREATE TABLE session_stream.txid_base (
    base bigint NOT NULL
);
INSERT INTO session_stream.txid_base VALUES (0);

-- The default input stream: one row per chat message.
CREATE TABLE session_stream.messages (
    agent_id    bigint      NOT NULL,
    customer_id bigint      NOT NULL,
    sent_at     timestamptz NOT NULL,
    from_agent  boolean     NOT NULL,   -- true: agent -> customer
    txid        bigint      NOT NULL DEFAULT session_stream.current_txid()
);
COMMENT ON TABLE session_stream.messages IS
    'Chat messages; from_agent = true is agent -> customer';
-- track_sessions() reads a customer's messages in time order through this.
CREATE INDEX messages_customer_id_sent_at_idx
    ON session_stream.messages (customer_id, sent_at);
-- consume_window() reads new transactions' rows through this, and the
-- recent past (to place late messages) through the next.
CREATE INDEX messages_txid_idx
    ON session_stream.messages USING brin (txid);
CREATE INDEX messages_sent_at_idx
    ON session_stream.messages USING brin (sent_at);

-- Results.  A results set NAME is two tables and a view:
--
--   NAME_closed  every answered session, written once when it closes;
--   NAME_latest  each key's newest session, open or answered, one row per
--                key (its primary key, named NAME_one_open_per_customer
--                or _pair: one row, so at most one open session, per
--                key), updated in place;
--   NAME         the view users read: the closed sessions and the open
--                ones, with responder_id / answered_at NULL while open.
--
-- Opening and answering a session change only NAME_latest columns that no
-- index covers, so those updates are HOT and leave no dead index entries;
-- its heap keeps room on each page for them (fillfactor), and page pruning
-- reclaims the old versions.  NAME_closed is insert-only.  Its index is
-- filled in random key order, which leaves btree leaves about 70 % full:
-- it is built (and rebuilt by VACUUM FULL or REINDEX) at that fill.
CREATE FUNCTION session_stream.create_results_in(schema_name name,
                                                 table_name name,
                                                 mode text)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    closed text;
    latest text;
    view text;
    keys text[];            -- the key columns, bigint
    answer text[];          -- columns set by the answer, NULL while open
    one_open text;          -- name of NAME_latest's primary key
    key_columns text;       -- their declarations
    columns text;
BEGIN
    -- NAME_closed and NAME_latest must fit in an identifier (63 bytes)
    IF octet_length(table_name) > 56 THEN
        RAISE EXCEPTION 'results set name "%" is too long', table_name
            USING ERRCODE = 'name_too_long',
                  DETAIL = 'Its tables are named NAME_closed and NAME_latest, which must fit in 63 bytes.',
                  HINT = 'Use a name of at most 56 bytes.';
    END IF;
    IF schema_name IS NULL OR table_name IS NULL THEN
        RAISE EXCEPTION 'invalid results set name'
            USING ERRCODE = 'invalid_name',
                  HINT = 'Give NAME or SCHEMA.NAME.';
    END IF;
    closed := format('%I.%I', schema_name, table_name || '_closed');
    latest := format('%I.%I', schema_name, table_name || '_latest');
    view := format('%I.%I', schema_name, table_name);
    IF mode = 'customer' THEN
        keys := ARRAY['customer_id'];
        answer := ARRAY['responder_id bigint', 'answered_at timestamptz'];
        one_open := table_name || '_one_open_per_customer';
    ELSIF mode = 'pair' THEN
        keys := ARRAY['customer_id', 'agent_id'];
        answer := ARRAY['answered_at timestamptz'];
        one_open := table_name || '_one_open_per_pair';
    ELSE
        RAISE EXCEPTION 'invalid mode "%"', mode
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid modes are "customer" and "pair".';
    END IF;

    key_columns := (SELECT string_agg(k || ' bigint NOT NULL', ', ') FROM unnest(keys) k);
    EXECUTE format(
        'CREATE TABLE %s (%s, opened_at timestamptz NOT NULL, %s,
             PRIMARY KEY (%s, opened_at) WITH (fillfactor = 70))',
        closed,
        key_columns,
        (SELECT string_agg(a || ' NOT NULL', ', ') FROM unnest(answer) a),
        array_to_string(keys, ', '));
    EXECUTE format(
        'CREATE TABLE %s (%s, opened_at timestamptz NOT NULL, %s,
             CONSTRAINT %I PRIMARY KEY (%s) WITH (fillfactor = 70)
         ) WITH (fillfactor = 70)',
        latest,
        key_columns,
        array_to_string(answer, ', '),
        one_open,
        array_to_string(keys, ', '));
    columns := array_to_string(keys, ', ') || ', opened_at, ' ||
        (SELECT string_agg(split_part(a, ' ', 1), ', ') FROM unnest(answer) a);
    EXECUTE format(
        'CREATE VIEW %s AS
         SELECT %s FROM %s
         UNION ALL
         SELECT %s FROM %s WHERE answered_at IS NULL',
        view, columns, closed, columns, latest);
    EXECUTE format('COMMENT ON TABLE %s IS %L', closed,
                   'Answered sessions of results set ' || view || ', written once');
    EXECUTE format('COMMENT ON TABLE %s IS %L', latest,
                   'Newest session per key of results set ' || view || ', open or answered');
    RETURN view::regclass;
END
$$;

-- create_results('my_schema.my_sessions', 'pair'): a results set for
-- track_sessions(..., 'results=my_schema.my_sessions'); an unqualified
-- name goes to the caller's current schema.
CREATE FUNCTION session_stream.create_results(name text,
                                              mode text DEFAULT 'customer')
RETURNS regclass
LANGUAGE sql
AS $$
    SELECT session_stream.create_results_in(
        CASE pg_catalog.array_length(pg_catalog.parse_ident(name), 1)
            WHEN 1 THEN pg_catalog.current_schema()
            WHEN 2 THEN (pg_catalog.parse_ident(name))[1]
        END,
        (pg_catalog.parse_ident(name))[pg_catalog.array_length(pg_catalog.parse_ident(name), 1)],
        mode);
$$;
COMMENT ON FUNCTION session_stream.create_results(text, text) IS
    'Create a results set (NAME_closed, NAME_latest and the view NAME) for track_sessions() and consume_window()';

-- Customer mode: a session opens at a customer's first unanswered message
-- and closes at the first reply from any agent.
SELECT session_stream.create_results_in('session_stream', 'sessions', 'customer');
COMMENT ON VIEW session_stream.sessions IS
    'Virtual sessions per customer; answered_at - opened_at is the first-response time';

-- Pair mode: the same per (customer, agent).
SELECT session_stream.create_results_in('session_stream', 'pair_sessions', 'pair');
COMMENT ON VIEW session_stream.pair_sessions IS
    'Virtual sessions per (customer, agent); answered_at - opened_at is the first-response time';

CREATE FUNCTION session_stream.track_sessions()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_track_sessions'
LANGUAGE C;
COMMENT ON FUNCTION session_stream.track_sessions() IS
    'AFTER INSERT row trigger keeping a results table equal to an event-time replay; args: mode, then agent=, customer=, ts=, from_agent=, results=';

-- Realtime customer mode on the default stream, ready at once.  A row that
-- arrives with a txid of another transaction is a restored one (pg_dump's
-- COPY): its sessions come with the dump, so it is not applied again.
CREATE TRIGGER track_sessions_customer
    AFTER INSERT ON session_stream.messages
    FOR EACH ROW
    WHEN (NEW.txid OPERATOR(pg_catalog.=) session_stream.current_txid())
    EXECUTE FUNCTION session_stream.track_sessions('customer');

-- Deferred mode: consume_window(), called from cron, consumes every message
-- committed since its previous call, exactly once.

-- One row per call that consumed anything; the newest row of a (source,
-- mode) is where the next call starts (upto_*: the consumed transactions,
-- like a snapshot: all ids below upto_xmin and those below upto_xmax not
-- in upto_xip).
CREATE TABLE session_stream.consumed_windows (
    window_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source                regclass    NOT NULL,
    mode                  text        NOT NULL,
    results               regclass    NOT NULL,
    upto_xmin             bigint      NOT NULL,
    upto_xmax             bigint      NOT NULL,
    upto_xip              bigint[]    NOT NULL,
    high_sent_at          timestamptz,          -- latest sent_at consumed so far
    messages              bigint      NOT NULL,
    sessions_opened       bigint      NOT NULL,
    sessions_closed       bigint      NOT NULL,
    keys_recomputed       bigint      NOT NULL,
    late_messages         bigint      NOT NULL,
    late_beyond_retention bigint      NOT NULL,
    first_sent_at         timestamptz,          -- event-time range of the batch
    last_sent_at          timestamptz,
    started_at            timestamptz NOT NULL,
    elapsed               interval    NOT NULL
);
CREATE INDEX consumed_windows_source_mode_idx
    ON session_stream.consumed_windows (source, mode, window_id);

-- Windows restored from another cluster may hold transaction ids beyond
-- this one's: raise txid_base so that every later position contains them.
CREATE FUNCTION session_stream.raise_txid_base()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_raise_txid_base'
LANGUAGE C;
CREATE TRIGGER raise_txid_base
    AFTER INSERT ON session_stream.consumed_windows
    REFERENCING NEW TABLE AS new_windows
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.raise_txid_base();

CREATE FUNCTION session_stream.consume_window(
    mode text DEFAULT 'customer',
    source regclass DEFAULT 'session_stream.messages',
    max_messages bigint DEFAULT NULL,
    OUT status text,                 -- consumed | empty | busy
    OUT messages bigint,
    OUT sessions_opened bigint,
    OUT sessions_closed bigint,
    OUT keys_recomputed bigint,
    OUT late_messages bigint,
    OUT late_beyond_retention bigint,
    OUT first_sent_at timestamptz,
    OUT last_sent_at timestamptz,
    OUT elapsed interval)
RETURNS record
AS 'MODULE_PATHNAME', 'ss_consume_window'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION session_stream.consume_window(text, regclass, bigint) IS
    'Deferred mode: consume the messages committed since the previous call, exactly once';

-- What the next consume_window() call would take: count and oldest time.
CREATE FUNCTION session_stream.pending_messages(
    mode text, source regclass,
    OUT pending bigint, OUT oldest_sent_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'ss_pending_messages'
LANGUAGE C STABLE;

-- Per consumed stream: totals, and how far behind the consumer is.
CREATE VIEW session_stream.consumer_stats AS
SELECT s.source, s.mode, s.results, s.windows, s.last_consumed_at,
       s.messages_consumed, s.late_messages, s.keys_recomputed,
       s.late_beyond_retention,
       p.pending AS messages_pending,
       pg_catalog.now() OPERATOR(pg_catalog.-) p.oldest_sent_at AS lag
  FROM (SELECT w.source, w.mode,
               (pg_catalog.array_agg(w.results ORDER BY w.window_id DESC))[1] AS results,
               pg_catalog.count(*) AS windows,
               pg_catalog.max(w.started_at) AS last_consumed_at,
               pg_catalog.sum(w.messages) AS messages_consumed,
               pg_catalog.sum(w.late_messages) AS late_messages,
               pg_catalog.sum(w.keys_recomputed) AS keys_recomputed,
               pg_catalog.sum(w.late_beyond_retention) AS late_beyond_retention
          FROM session_stream.consumed_windows w
         GROUP BY w.source, w.mode) s
 CROSS JOIN LATERAL session_stream.pending_messages(s.mode, s.source) p;

-- Retention for deferred mode.
CREATE TABLE session_stream.purges (
    source        regclass    NOT NULL,
    purged_before timestamptz NOT NULL,
    purged_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    messages      bigint      NOT NULL
);
CREATE INDEX purges_source_idx ON session_stream.purges (source);

-- pg_dump keeps the messages, the sessions and the consumers' history (see
-- README.md, "Backups").
SELECT pg_catalog.pg_extension_config_dump('session_stream.messages', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.sessions_closed', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.sessions_latest', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.pair_sessions_closed', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.pair_sessions_latest', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.consumed_windows', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.consumed_windows_window_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.purges', '');

CREATE FUNCTION session_stream.purge_messages(
    source regclass DEFAULT 'session_stream.messages',
    keep interval DEFAULT '7 days')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ss_purge_messages'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION session_stream.purge_messages(regclass, interval) IS
    'Delete messages older than now() - keep that every consumer of the source has consumed';
-- ====================================================================
-- Feed rules: conditions over a feed table's rows, evaluated by a C
-- trigger, alerts by NOTIFY and/or a durable outbox.  See README.md,
-- "Feed rules".
-- ====================================================================

-- Owners of feed tables add rules for their own tables (check_feed_rule()
-- enforces that), so the rules table is open to every role.
GRANT USAGE ON SCHEMA session_stream TO PUBLIC;

CREATE TABLE session_stream.feed_rules (
    rule_id   bigserial PRIMARY KEY,
    source    regclass NOT NULL,
    name      text     NOT NULL,
    condition text     NOT NULL,   -- SQL boolean expression over source's columns
    channel   text     NOT NULL DEFAULT 'session_stream_alerts',
    delivery  text     NOT NULL DEFAULT 'notify',   -- notify | outbox | both
    on_update text     NOT NULL DEFAULT 'always',   -- always | edge
    enabled   boolean  NOT NULL DEFAULT true,
    CONSTRAINT feed_rules_source_name_key UNIQUE (source, name)
);
COMMENT ON TABLE session_stream.feed_rules IS
    'Feed rules: an alert is sent when condition holds for a new or updated row of source';
GRANT SELECT, INSERT, UPDATE, DELETE ON session_stream.feed_rules TO PUBLIC;
GRANT USAGE ON SEQUENCE session_stream.feed_rules_rule_id_seq TO PUBLIC;

-- The durable outbox ("read and burn" with take_alerts()).
CREATE TABLE session_stream.alerts (
    alert_id   bigserial   PRIMARY KEY,
    rule       text        NOT NULL,
    channel    text        NOT NULL,
    payload    jsonb       NOT NULL,   -- {"rule", "table", "op", "row"}
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE session_stream.alerts IS
    'Outbox of feed rule alerts, oldest first by alert_id; consume with take_alerts()';
CREATE INDEX alerts_channel_alert_id_idx
    ON session_stream.alerts (channel, alert_id);

-- pg_dump keeps rules and undelivered alerts.
SELECT pg_catalog.pg_extension_config_dump('session_stream.feed_rules', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.feed_rules_rule_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.alerts', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.alerts_alert_id_seq', '');

-- Writing a rule checks it: owner of the source, valid delivery and
-- on_update, a channel NOTIFY accepts, a condition that compiles.
CREATE FUNCTION session_stream.check_feed_rule()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_check_feed_rule'
LANGUAGE C;
CREATE TRIGGER check_feed_rule
    BEFORE INSERT OR UPDATE OR DELETE ON session_stream.feed_rules
    FOR EACH ROW EXECUTE FUNCTION session_stream.check_feed_rule();

-- Any change to the rules drops every backend's compiled rules.
CREATE FUNCTION session_stream.invalidate_feed_rules()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_invalidate_feed_rules'
LANGUAGE C;
CREATE TRIGGER invalidate_feed_rules
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session_stream.feed_rules
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.invalidate_feed_rules();

CREATE FUNCTION session_stream.evaluate_rules()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_evaluate_rules'
LANGUAGE C;
COMMENT ON FUNCTION session_stream.evaluate_rules() IS
    'AFTER INSERT OR UPDATE trigger evaluating the feed_rules of its table; FOR EACH ROW, or FOR EACH STATEMENT with transition tables';

-- Detach the evaluate_rules() triggers watch() attached.
CREATE FUNCTION session_stream.unwatch(source regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trigger_name name;
BEGIN
    FOR trigger_name IN
        SELECT t.tgname FROM pg_catalog.pg_trigger t
         WHERE t.tgrelid OPERATOR(pg_catalog.=) source
           AND t.tgname OPERATOR(pg_catalog.=) ANY (ARRAY['evaluate_rules',
                   'evaluate_rules_insert', 'evaluate_rules_update']::name[])
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', trigger_name, source);
    END LOOP;
END
$$;

-- Attach evaluate_rules() to a feed table: one row trigger, or two statement
-- triggers reading transition tables (transition tables allow one event
-- per trigger).  Calling it again switches between the two.
CREATE FUNCTION session_stream.watch(source regclass,
                                     per_statement boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM session_stream.unwatch(source);
    IF per_statement THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER evaluate_rules_insert AFTER INSERT ON %s '
            'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
            'EXECUTE FUNCTION session_stream.evaluate_rules()', source);
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER evaluate_rules_update AFTER UPDATE ON %s '
            'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
            'FOR EACH STATEMENT EXECUTE FUNCTION session_stream.evaluate_rules()',
            source);
    ELSE
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER evaluate_rules AFTER INSERT OR UPDATE ON %s '
            'FOR EACH ROW EXECUTE FUNCTION session_stream.evaluate_rules()',
            source);
    END IF;
END
$$;
COMMENT ON FUNCTION session_stream.watch(regclass, boolean) IS
    'Attach the evaluate_rules() trigger(s) to a feed table, row-level or statement-level';

-- Read and burn: up to n alerts, oldest first, each to one consumer only
-- (rows another consumer holds are skipped, not waited for).
CREATE FUNCTION session_stream.take_alerts(n integer,
                                           channel text DEFAULT NULL)
RETURNS SETOF session_stream.alerts
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH picked AS (
        SELECT a.alert_id FROM session_stream.alerts a
         WHERE take_alerts.channel IS NULL
            OR a.channel OPERATOR(pg_catalog.=) take_alerts.channel
         ORDER BY a.alert_id
         LIMIT take_alerts.n
           FOR UPDATE SKIP LOCKED
    ), taken AS (
        DELETE FROM session_stream.alerts a
         USING picked
         WHERE a.alert_id OPERATOR(pg_catalog.=) picked.alert_id
        RETURNING a.*
    )
    SELECT * FROM taken ORDER BY alert_id;
$$;
COMMENT ON FUNCTION session_stream.take_alerts(integer, text) IS
    'Delete and return up to n outbox alerts, oldest first; safe with concurrent consumers';

-- Take one alert by id: how a listener acknowledges an alert whose
-- notification carried an alert_id.  Empty if someone else took it.
CREATE FUNCTION session_stream.take_alert(alert_id bigint)
RETURNS SETOF session_stream.alerts
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM session_stream.alerts a
     WHERE a.alert_id OPERATOR(pg_catalog.=) take_alert.alert_id
    RETURNING a.*;
$$;
