\ir consume_insert_plain.sql
ALTER TABLE src ADD COLUMN txid bigint NOT NULL DEFAULT session_stream.current_txid();
CREATE INDEX ON src USING brin (txid);
