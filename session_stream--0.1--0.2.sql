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

-- ====================================================================
-- Business hours: calendars, and business_time() / business_deadline()
-- over them (src/calendar.c).  See README.md, "Business hours".
-- ====================================================================

-- A calendar: a time zone from pg_timezone_names, checked when written.
CREATE TABLE session_stream.calendars (
    calendar  text NOT NULL PRIMARY KEY,   -- 1 to 63 bytes
    time_zone text NOT NULL DEFAULT 'UTC'
);
COMMENT ON TABLE session_stream.calendars IS
    'Business-hours calendars: a time zone, weekly business_hours and holidays';

-- Weekly opening ranges in the calendar's local time; several a day,
-- overlaps count once.  Day D's range is the real interval from
-- (D + opens) AT TIME ZONE time_zone to (D + closes) AT TIME ZONE time_zone.
CREATE TABLE session_stream.business_hours (
    calendar text    NOT NULL REFERENCES session_stream.calendars
                     ON DELETE CASCADE ON UPDATE CASCADE,
    isodow   integer NOT NULL,   -- 1 Monday .. 7 Sunday
    opens    time    NOT NULL,
    closes   time    NOT NULL,   -- may be 24:00
    PRIMARY KEY (calendar, isodow, opens, closes),
    CONSTRAINT business_hours_isodow_check
        CHECK (isodow OPERATOR(pg_catalog.>=) 1 AND isodow OPERATOR(pg_catalog.<=) 7),
    CONSTRAINT business_hours_opens_before_closes
        CHECK (opens OPERATOR(pg_catalog.<) closes)
);
COMMENT ON TABLE session_stream.business_hours IS
    'Weekly business hours of a calendar, in its local time: isodow 1 (Monday) to 7, opens < closes, closes may be 24:00';

-- Local days on which a calendar is closed.
CREATE TABLE session_stream.holidays (
    calendar text NOT NULL REFERENCES session_stream.calendars
                  ON DELETE CASCADE ON UPDATE CASCADE,
    day      date NOT NULL,
    PRIMARY KEY (calendar, day)
);
COMMENT ON TABLE session_stream.holidays IS
    'Local days on which a calendar is closed';

-- pg_dump keeps the calendars.
SELECT pg_catalog.pg_extension_config_dump('session_stream.calendars', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.business_hours', '');
SELECT pg_catalog.pg_extension_config_dump('session_stream.holidays', '');

-- Every role may read calendars (business_time() reads them for any
-- caller); changing them is left to the owner, who may GRANT it.
GRANT SELECT ON session_stream.calendars, session_stream.business_hours,
                session_stream.holidays TO PUBLIC;

-- Writing a calendar checks it: a known time zone, isodow 1-7, a range
-- that opens before it closes, a finite holiday.
CREATE FUNCTION session_stream.check_calendar()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_check_calendar'
LANGUAGE C;
CREATE TRIGGER check_calendar
    BEFORE INSERT OR UPDATE ON session_stream.calendars
    FOR EACH ROW EXECUTE FUNCTION session_stream.check_calendar();
CREATE TRIGGER check_calendar
    BEFORE INSERT OR UPDATE ON session_stream.business_hours
    FOR EACH ROW EXECUTE FUNCTION session_stream.check_calendar();
CREATE TRIGGER check_calendar
    BEFORE INSERT OR UPDATE ON session_stream.holidays
    FOR EACH ROW EXECUTE FUNCTION session_stream.check_calendar();

-- Any change to a calendar drops every backend's cached calendars.
CREATE FUNCTION session_stream.invalidate_calendars()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ss_invalidate_calendars'
LANGUAGE C;
CREATE TRIGGER invalidate_calendars
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session_stream.calendars
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.invalidate_calendars();
CREATE TRIGGER invalidate_calendars
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session_stream.business_hours
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.invalidate_calendars();
CREATE TRIGGER invalidate_calendars
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session_stream.holidays
    FOR EACH STATEMENT EXECUTE FUNCTION session_stream.invalidate_calendars();

-- Business time in [since, until), as hours ('30:00:00'); 0 when until <=
-- since.  A NULL calendar counts around the clock.
CREATE FUNCTION session_stream.business_time(calendar text,
                                             since timestamptz,
                                             until timestamptz)
RETURNS interval
AS 'MODULE_PATHNAME', 'ss_business_time'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION session_stream.business_time(text, timestamptz, timestamptz) IS
    'Business time of a calendar in [since, until), as hours; a NULL calendar counts around the clock';

-- The first instant by which target of business time has passed since
-- since (a day of target is 24 hours, a month 30 days); since for a zero
-- target; NULL when the calendar has no hours at all.
CREATE FUNCTION session_stream.business_deadline(calendar text,
                                                 since timestamptz,
                                                 target interval)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'ss_business_deadline'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION session_stream.business_deadline(text, timestamptz, interval) IS
    'First instant by which target of business time has passed since since; NULL if the calendar has no hours';
