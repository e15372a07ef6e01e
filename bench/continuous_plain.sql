-- (a) of the continuous workload: realtime's plain table.
\ir continuous_reset.sql
\ir realtime_plain.sql
