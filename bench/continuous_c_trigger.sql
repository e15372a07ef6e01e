-- (b) of the continuous workload: realtime's C trigger in pair mode.
\ir continuous_reset.sql
\ir realtime_c_trigger.sql
