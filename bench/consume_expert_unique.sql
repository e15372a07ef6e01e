-- The same into a table allowing one open session per customer.
INSERT INTO window_unique SELECT * FROM reference_sessions;
