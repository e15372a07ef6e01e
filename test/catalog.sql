-- The extension's objects as the catalogs describe them, one fact per
-- row, sorted: two databases whose outputs are equal have the same
-- session_stream.  t/006_upgrade.pl compares a database updated from 0.1
-- with a fresh CREATE EXTENSION this way (pg_dump cannot show it: it
-- never dumps extension members).
--
-- Covered: the version; every member (pg_describe_object); functions
-- (signature, defaults, body, options, ACL); aggregates (their
-- pg_aggregate row, volatility, parallel safety, ACL); member relations (kind,
-- persistence, options, row security, ACL), their columns (order, type,
-- NOT NULL, default, identity, generated, collation), view definitions,
-- sequences' parameters, indexes, constraints, triggers with their enabled
-- state, policies; comments on members and their columns; the initial
-- privileges pg_dump restores (pg_init_privs); the schema's ACL; the tables
-- registered for pg_dump with their filters.  Multi-line definitions are
-- folded onto one line.
WITH ext AS (
    SELECT oid, extversion, extconfig, extcondition
      FROM pg_catalog.pg_extension WHERE extname = 'session_stream'
), members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_catalog.pg_depend d JOIN ext ON d.refobjid = ext.oid
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.deptype = 'e'
), member_relations AS (
    SELECT c.* FROM pg_catalog.pg_class c
      JOIN members m ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND m.objid = c.oid
), facts(fact) AS (
    SELECT 'version ' || extversion FROM ext
    UNION ALL
    SELECT 'member ' || pg_catalog.pg_describe_object(classid, objid, objsubid)
      FROM members
    UNION ALL
    SELECT 'function ' || pg_catalog.pg_get_functiondef(p.oid)
           || ' ACL ' || coalesce(p.proacl::text, 'default')
      FROM pg_catalog.pg_proc p
      JOIN members m ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                    AND m.objid = p.oid
     WHERE p.prokind <> 'a'
    UNION ALL
    -- pg_get_functiondef() refuses aggregates: their pg_aggregate row
    SELECT pg_catalog.format('aggregate %s %s volatility %s parallel %s ACL %s',
                  p.oid::pg_catalog.regprocedure, a::text, p.provolatile,
                  p.proparallel, coalesce(p.proacl::text, 'default'))
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_aggregate a ON a.aggfnoid = p.oid
      JOIN members m ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                    AND m.objid = p.oid
    UNION ALL
    SELECT pg_catalog.format('relation %s kind %s persistence %s options %s row security %s/%s ACL %s',
                  c.oid::pg_catalog.regclass, c.relkind, c.relpersistence,
                  coalesce(c.reloptions::text, '-'),
                  c.relrowsecurity, c.relforcerowsecurity,
                  coalesce(c.relacl::text, 'default'))
      FROM member_relations c
    UNION ALL
    SELECT pg_catalog.format('column %s #%s %I %s%s default %s identity "%s" generated "%s" collation %s',
                  c.oid::pg_catalog.regclass,
                  pg_catalog.row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
                  a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
                  CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                  coalesce(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '-'),
                  a.attidentity, a.attgenerated,
                  coalesce(co.collname, '-'))
      FROM member_relations c
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
      LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
      LEFT JOIN pg_catalog.pg_collation co
             ON co.oid = a.attcollation AND a.attcollation <> 0
     WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT pg_catalog.format('view %s %s', c.oid::pg_catalog.regclass,
                  pg_catalog.pg_get_viewdef(c.oid))
      FROM member_relations c WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT pg_catalog.format('sequence %s %s start %s increment %s min %s max %s cache %s cycle %s',
                  c.oid::pg_catalog.regclass, pg_catalog.format_type(s.seqtypid, NULL),
                  s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
                  s.seqcycle)
      FROM member_relations c JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
    UNION ALL
    SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
      FROM member_relations c JOIN pg_catalog.pg_index i ON i.indrelid = c.oid
    UNION ALL
    SELECT pg_catalog.format('constraint %I on %s %s', con.conname,
                  c.oid::pg_catalog.regclass,
                  pg_catalog.pg_get_constraintdef(con.oid))
      FROM member_relations c JOIN pg_catalog.pg_constraint con ON con.conrelid = c.oid
    UNION ALL
    SELECT pg_catalog.format('trigger %s enabled %s', pg_catalog.pg_get_triggerdef(t.oid),
                  t.tgenabled)
      FROM member_relations c JOIN pg_catalog.pg_trigger t ON t.tgrelid = c.oid
     WHERE NOT t.tgisinternal
    UNION ALL
    SELECT pg_catalog.format('policy %I on %s %s %s using %s check %s', pol.polname,
                  c.oid::pg_catalog.regclass, pol.polcmd, pol.polpermissive,
                  coalesce(pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), '-'),
                  coalesce(pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid), '-'))
      FROM member_relations c JOIN pg_catalog.pg_policy pol ON pol.polrelid = c.oid
    UNION ALL
    SELECT pg_catalog.format('comment on %s: %s',
                  pg_catalog.pg_describe_object(d.classoid, d.objoid, d.objsubid),
                  d.description)
      FROM pg_catalog.pg_description d
      JOIN members m ON m.classid = d.classoid AND m.objid = d.objoid
    UNION ALL
    SELECT pg_catalog.format('initial privileges of %s (%s): %s',
                  pg_catalog.pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
                  ip.privtype, ip.initprivs)
      FROM pg_catalog.pg_init_privs ip
      JOIN members m ON m.classid = ip.classoid AND m.objid = ip.objoid
    UNION ALL
    SELECT pg_catalog.format('schema %I ACL %s', n.nspname,
                  coalesce(n.nspacl::text, 'default'))
      FROM pg_catalog.pg_namespace n WHERE n.nspname = 'session_stream'
    UNION ALL
    SELECT pg_catalog.format('dumped %s %s', config.relid::pg_catalog.regclass,
                  pg_catalog.quote_literal(config.condition))
      FROM ext, unnest(ext.extconfig, ext.extcondition) AS config(relid, condition)
)
SELECT pg_catalog.regexp_replace(fact, '\s*\n\s*', ' ', 'g') AS fact
  FROM facts
 ORDER BY 1;
