/* session_stream--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION session_stream" to load this file. \quit

-- Every object and operator below is schema-qualified so that the script
-- means the same whatever search_path the installing role has.

-- The default input stream: one row per chat message.
CREATE TABLE session_stream.messages (
    agent_id    bigint      NOT NULL,
    customer_id bigint      NOT NULL,
    sent_at     timestamptz NOT NULL,
    from_agent  boolean     NOT NULL    -- true: agent -> customer
);
COMMENT ON TABLE session_stream.messages IS
    'Chat messages; from_agent = true is agent -> customer';
-- track_sessions() reads a customer's messages in time order through this.
CREATE INDEX messages_customer_id_sent_at_idx
    ON session_stream.messages (customer_id, sent_at);

-- Customer mode: a session opens at a customer's first unanswered message
-- and closes at the first reply from any agent.
CREATE TABLE session_stream.sessions (
    customer_id  bigint      NOT NULL,
    opened_at    timestamptz NOT NULL,
    responder_id bigint,                -- NULL while open
    answered_at  timestamptz,           -- NULL while open
    PRIMARY KEY (customer_id, opened_at),
    CONSTRAINT sessions_one_open_per_customer
        EXCLUDE USING btree (customer_id WITH OPERATOR(pg_catalog.=))
        WHERE (answered_at IS NULL)
);
COMMENT ON TABLE session_stream.sessions IS
    'Virtual sessions per customer; answered_at - opened_at is the first-response time';

-- Pair mode: the same per (customer, agent).
CREATE TABLE session_stream.pair_sessions (
    customer_id  bigint      NOT NULL,
    agent_id     bigint      NOT NULL,
    opened_at    timestamptz NOT NULL,
    answered_at  timestamptz,           -- NULL while open
    PRIMARY KEY (customer_id, agent_id, opened_at),
    CONSTRAINT pair_sessions_one_open_per_pair
        EXCLUDE USING btree (customer_id WITH OPERATOR(pg_catalog.=),
                             agent_id WITH OPERATOR(pg_catalog.=))
        WHERE (answered_at IS NULL)
);
COMMENT ON TABLE session_stream.pair_sessions IS
    'Virtual sessions per (customer, agent); answered_at - opened_at is the first-response time';

CREATE FUNCTION session_stream.track_sessions()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_track_sessions'
LANGUAGE C;
COMMENT ON FUNCTION session_stream.track_sessions() IS
    'AFTER INSERT row trigger keeping a results table equal to an event-time replay; args: mode, then agent=, customer=, ts=, from_agent=, results=';

-- Realtime customer mode on the default stream, ready at once.
CREATE TRIGGER track_sessions_customer
    AFTER INSERT ON session_stream.messages
    FOR EACH ROW EXECUTE FUNCTION session_stream.track_sessions('customer');
