-- One timed run of bench/run.sh consume: the variant's statement (:script)
-- in a transaction rolled back afterwards, so that every round starts from
-- the same state.  With :check on, the sessions it wrote (:sessions) are
-- compared, untimed, with the reference (:reference) before the rollback.
BEGIN;
\timing on
\ir :script
\timing off
\if :check
SELECT 'differences: ' || count(*) || ' of ' ||
       (SELECT count(*) FROM :reference) || ' sessions' AS check
  FROM ((SELECT * FROM :sessions EXCEPT ALL SELECT * FROM :reference)
        UNION ALL
        (SELECT * FROM :reference EXCEPT ALL SELECT * FROM :sessions)) d;
\endif
ROLLBACK;
