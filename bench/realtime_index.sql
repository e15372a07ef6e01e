-- Reference (a1): plain insert plus the (customer, time) index that
-- track_sessions() requires, no trigger: what the index alone costs.
\ir realtime_plain.sql
CREATE INDEX tbl_b_ts_idx ON tbl (b, ts);
