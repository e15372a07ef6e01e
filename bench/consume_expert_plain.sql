-- The expert's window query (consume_reference.sql) into a plain table.
INSERT INTO window_plain SELECT * FROM reference_sessions;
