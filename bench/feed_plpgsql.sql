-- (d) Reference: the seeds' PL/pgSQL row trigger, rewritten to send the
-- same alert JSON as evaluate_rules(); its one rule is hard-coded.
\ir feed_plain.sql
CREATE OR REPLACE FUNCTION feed_alerts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.c2 > 9999 THEN
        PERFORM pg_notify('feed_alerts', json_build_object(
            'rule', 'c2_high', 'table', 'public.feed', 'op', TG_OP,
            'row', row_to_json(NEW))::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER feed_alerts AFTER INSERT OR UPDATE ON feed
    FOR EACH ROW EXECUTE FUNCTION feed_alerts();
