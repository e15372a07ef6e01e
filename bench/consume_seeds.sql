-- The seeds' consume step: delete 1M rows from tbl and insert them, in
-- order, into tbl_mid, whose trigger computes the sessions.
WITH burnt AS (
    DELETE FROM tbl WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM tbl ORDER BY ts LIMIT 1000000))
    RETURNING *)
INSERT INTO tbl_mid SELECT * FROM burnt ORDER BY b, ts;
