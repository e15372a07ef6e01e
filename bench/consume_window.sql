-- consume_window() on the source :source, default batch limit (1M).
SELECT status, messages, sessions_opened, sessions_closed, elapsed
  FROM session_stream.consume_window('customer', :'source');
