/* session_stream--0.1--0.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION session_stream UPDATE TO '0.2'" to load this file. \quit

-- Version 0.2.  session_stream--0.1.sql is the released 0.1 and is never
-- edited: CREATE EXTENSION installs 0.2 by running it and then this step,
-- and ALTER EXTENSION session_stream UPDATE runs this step on a 0.1
-- database, so both roads end with the same objects
-- (t/006_upgrade.pl compares them through the catalogs).
--
-- As in the 0.1 script, every object and operator is schema-qualified so
-- that the step means the same whatever search_path the updating role
-- has, and functions set their own search_path.
