-- Before each variant of the continuous workload: stop the consumer of
-- tbl the last (c) run left (its worker exits) and forget its windows.
SELECT session_stream.stop_consumer(source, 'pair')
  FROM session_stream.consumers WHERE source = to_regclass('tbl');
DELETE FROM session_stream.consumed_windows WHERE source = to_regclass('tbl');
