-- Reference (a): the seeds' message table, no trigger.
SET client_min_messages = warning;
DROP TABLE IF EXISTS tbl, tbl_result CASCADE;
RESET client_min_messages;
CREATE TABLE tbl (
    a      int       NOT NULL,  -- agent
    b      int       NOT NULL,  -- customer
    ts     timestamp NOT NULL,
    direct boolean   NOT NULL   -- true: a -> b
);
CREATE INDEX tbl_ts_idx ON tbl (ts);
