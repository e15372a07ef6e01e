-- Reference (a2): (a1) plus an AFTER INSERT ... FOR EACH ROW trigger that
-- does nothing (PL/pgSQL): what firing a row trigger costs before any work.
\ir realtime_index.sql
CREATE OR REPLACE FUNCTION tbl_nothing() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER tbl_nothing AFTER INSERT ON tbl FOR EACH ROW
    EXECUTE FUNCTION tbl_nothing();
