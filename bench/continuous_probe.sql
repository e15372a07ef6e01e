-- One probe of the consumer's delay (see continuous_setup.sql).
INSERT INTO tbl (a, b, ts, direct)
VALUES (1, nextval('probe_customer'), clock_timestamp(), false)
RETURNING b AS customer, extract(epoch FROM ts) AS sent \gset
SELECT probe_wait(:customer, :sent);
\sleep 50 ms
