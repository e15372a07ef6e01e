-- The delay probe of the continuous workload's (c): a message of a
-- customer of its own (above the workload's 10k), then a wait until its
-- pair session shows, polled every 5 ms; the delay from the message's
-- clock_timestamp() (taken just before its commit) to the poll that saw it
-- goes to probe_delays (round: set after each run).
CREATE SEQUENCE probe_customer START 1000001;
CREATE TABLE probe_delays (round int, ms float8 NOT NULL);
CREATE FUNCTION probe_wait(customer int, sent float8) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 6000 LOOP    -- 30 s at most
        -- a new snapshot per statement (read committed)
        PERFORM FROM session_stream.pair_sessions_latest
          WHERE customer_id = customer AND agent_id = 1;
        IF FOUND THEN
            INSERT INTO probe_delays (ms)
            VALUES ((extract(epoch FROM clock_timestamp()::timestamp) - sent) * 1000);
            RETURN;
        END IF;
        PERFORM pg_sleep(0.005);
    END LOOP;
    RAISE EXCEPTION 'customer % not applied after 30 s', customer;
END
$$;

-- Once the writers stop: milliseconds until nothing of tbl is pending in
-- pair mode (up to 30 s).
CREATE FUNCTION wait_caught_up() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    left_over bigint;
BEGIN
    FOR i IN 1 .. 3000 LOOP
        SELECT pending INTO left_over FROM session_stream.pending_messages('pair', 'tbl');
        EXIT WHEN left_over = 0;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN left_over || ' pending after '
        || round(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000) || ' ms';
END
$$;
