-- Reference (c): the seeds' PL/pgSQL pair-mode trigger, rewritten.  It
-- trusts arrival order: a late message is applied as if it were the newest.
\ir realtime_plain.sql
CREATE TABLE tbl_result (
    b     int NOT NULL,      -- customer
    b_ts  timestamp,         -- session opened
    a     int,               -- agent of the pair
    rsp_a int DEFAULT -1,    -- responder, -1 while open
    a_ts  timestamp          -- answered
);
ALTER TABLE tbl_result ADD CONSTRAINT tbl_result_one_open
    EXCLUDE (b WITH =, a WITH =) WHERE (rsp_a = -1);

CREATE OR REPLACE FUNCTION tbl_track_pair() RETURNS trigger
LANGUAGE plpgsql STRICT AS $$
BEGIN
    IF NOT NEW.direct THEN
        -- customer -> agent: open a session unless one is open
        PERFORM 1 FROM tbl_result
         WHERE b = NEW.b AND a = NEW.a AND rsp_a = -1;
        IF NOT FOUND THEN
            INSERT INTO tbl_result (b, b_ts, a) VALUES (NEW.b, NEW.ts, NEW.a)
            ON CONFLICT ON CONSTRAINT tbl_result_one_open DO NOTHING;
        END IF;
    ELSE
        -- agent -> customer: answer the open session, if any
        PERFORM 1 FROM tbl_result
         WHERE b = NEW.b AND a = NEW.a AND rsp_a = -1;
        IF FOUND THEN
            UPDATE tbl_result SET rsp_a = NEW.a, a_ts = NEW.ts
             WHERE b = NEW.b AND a = NEW.a AND rsp_a = -1 AND NEW.ts >= b_ts;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER tbl_sessions AFTER INSERT ON tbl FOR EACH ROW
    EXECUTE FUNCTION tbl_track_pair();
