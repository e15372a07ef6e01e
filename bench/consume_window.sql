SELECT status, messages, sessions_opened, sessions_closed, elapsed
  FROM session_stream.consume_window('customer', 'deferred_tbl', 1000000);
