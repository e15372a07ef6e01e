-- The test oracle: an independent replay of messages in event-time order,
-- written plainly in PL/pgSQL, sharing no code with the extension.
--
--   oracle.replay(mode, query)  sessions a replay of query's messages gives;
--                               query returns agent_id, customer_id,
--                               sent_at, from_agent (any int / time types)
--   oracle.diff(mode, query, results)
--                               rows in one of replay and results but not
--                               in the other: empty when the results are
--                               exact
-- query must return sent_at as timestamptz; the extension stores a
-- timestamp source's times as if they were UTC, so such a query selects
-- (ts AT TIME ZONE 'UTC').
CREATE SCHEMA oracle;

CREATE FUNCTION oracle.replay(mode text, query text)
RETURNS TABLE (customer_id bigint, agent_id bigint,
               opened_at timestamptz, answered_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    m record;
    have_key boolean := false;
    key_customer bigint;
    key_agent bigint;
    open_since timestamptz;
BEGIN
    IF mode NOT IN ('customer', 'pair') THEN
        RAISE EXCEPTION 'unknown mode %', mode;
    END IF;
    FOR m IN EXECUTE format(
        'SELECT q.agent_id::bigint AS agent_id, q.customer_id::bigint AS customer_id,
                q.sent_at::timestamptz AS sent_at, q.from_agent
           FROM (%s) AS q(agent_id, customer_id, sent_at, from_agent)
          ORDER BY 2, %s 3, 4, 1',
        query,
        CASE WHEN mode = 'pair' THEN '1,' ELSE '' END)
    LOOP
        -- a new key: flush the open session of the previous one
        IF NOT have_key OR m.customer_id <> key_customer
           OR (mode = 'pair' AND m.agent_id <> key_agent) THEN
            IF have_key AND open_since IS NOT NULL THEN
                customer_id := key_customer;
                agent_id := CASE WHEN mode = 'pair' THEN key_agent END;
                opened_at := open_since;
                answered_at := NULL;
                RETURN NEXT;
            END IF;
            have_key := true;
            key_customer := m.customer_id;
            key_agent := m.agent_id;
            open_since := NULL;
        END IF;

        IF NOT m.from_agent THEN
            IF open_since IS NULL THEN
                open_since := m.sent_at;
            END IF;
        ELSIF open_since IS NOT NULL AND m.sent_at >= open_since THEN
            customer_id := key_customer;
            agent_id := m.agent_id;
            opened_at := open_since;
            answered_at := m.sent_at;
            RETURN NEXT;
            open_since := NULL;
        END IF;
    END LOOP;
    IF have_key AND open_since IS NOT NULL THEN
        customer_id := key_customer;
        agent_id := CASE WHEN mode = 'pair' THEN key_agent END;
        opened_at := open_since;
        answered_at := NULL;
        RETURN NEXT;
    END IF;
END
$$;

CREATE FUNCTION oracle.diff(mode text, query text, results regclass)
RETURNS TABLE (side text, customer_id bigint, agent_id bigint,
               opened_at timestamptz, answered_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    stored text := format(
        'SELECT customer_id::bigint, %s::bigint, opened_at::timestamptz, answered_at::timestamptz FROM %s',
        CASE WHEN mode = 'pair' THEN 'agent_id' ELSE 'responder_id' END,
        results);
BEGIN
    RETURN QUERY EXECUTE format(
        '(SELECT ''missing'', * FROM oracle.replay(%L, %L)
          EXCEPT ALL SELECT ''missing'', * FROM (%s) s)
         UNION ALL
         (SELECT ''extra'', * FROM (%s) s
          EXCEPT ALL SELECT ''extra'', * FROM oracle.replay(%L, %L))
         ORDER BY 2, 3, 4, 1',
        mode, query, stored, stored, mode, query);
END
$$;
