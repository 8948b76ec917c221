-- Attacks that worked on 0.3.0 (issue 9), each with a positive control showing that the test
-- sees the attack's effect where it would land.

-- 1. An issuer member makes revoke_on_change evaluate its own cast. As a SECURITY DEFINER
--    trigger, to_jsonb(OLD/NEW) ran the attacker's cast as the extension owner (a superuser).
CREATE ROLE regress_atk_issuer IN ROLE linktoken_issuer;
CREATE SCHEMA atk AUTHORIZATION regress_atk_issuer;
SELECT linktoken.define_purpose('atk_reset', '1 hour');
SET ROLE regress_atk_issuer;
CREATE TYPE atk.mood AS ENUM ('calm', 'angry');
CREATE TABLE atk.log (who text, super boolean);
CREATE FUNCTION atk.mood_json(m atk.mood) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO atk.log SELECT current_user, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user;
    RETURN pg_catalog.to_json(m::text);
END
$$;
CREATE CAST (atk.mood AS json) WITH FUNCTION atk.mood_json(atk.mood);
CREATE TABLE atk.users (id int PRIMARY KEY, email text, mood atk.mood);
INSERT INTO atk.users VALUES (1, 'a@example.org', 'calm');
CREATE TRIGGER users_revoke AFTER UPDATE OF email ON atk.users
    FOR EACH ROW EXECUTE FUNCTION linktoken.revoke_on_change('id', 'atk_reset');
RESET ROLE;
SELECT linktoken.issue('atk_reset', '1') AS atk_tok \gset
SET ROLE regress_atk_issuer;
UPDATE atk.users SET email = 'b@example.org' WHERE id = 1;
RESET ROLE;
-- Positive control: the cast did run inside the trigger (twice: OLD and NEW) ...
-- ... but as the attacker, never as a superuser.
SELECT who, super, count(*) FROM atk.log GROUP BY who, super;
-- The trigger still does its job.
SELECT status FROM linktoken.peek(:'atk_tok', 'atk_reset');
-- A role that may update the table but is not an issuer cannot revoke through it (42501).
CREATE ROLE regress_atk_plain;
GRANT USAGE ON SCHEMA atk TO regress_atk_plain;
GRANT SELECT, UPDATE ON atk.users TO regress_atk_plain;
SET ROLE regress_atk_issuer;
GRANT INSERT ON atk.log TO regress_atk_plain;
RESET ROLE;
SET ROLE regress_atk_plain;
SELECT try($$UPDATE atk.users SET email = 'c@example.org' WHERE id = 1$$);
RESET ROLE;

-- 2. A pre-created linktoken schema. A role with CREATE on the database creates the schema
--    first; CREATE EXTENSION would install into a schema that role owns.
CREATE ROLE regress_atk_creator;
CREATE DATABASE regress_atk_db OWNER regress_atk_creator;
\c regress_atk_db
SET client_min_messages = warning;
SET ROLE regress_atk_creator;
CREATE SCHEMA linktoken;
RESET ROLE;
-- Positive control: the schema is the attacker's.
SELECT nspowner::regrole AS owner FROM pg_namespace WHERE nspname = 'linktoken';
\set VERBOSITY sqlstate
CREATE EXTENSION linktoken;
\set VERBOSITY default
-- (No CONTEXT lines: PostgreSQL 18 adds the install script's text to them.)
\set SHOW_CONTEXT never
CREATE EXTENSION linktoken;
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'linktoken';
-- A superuser's schema that lets another role CREATE in it is refused too ...
DROP SCHEMA linktoken;
CREATE SCHEMA linktoken;
GRANT CREATE ON SCHEMA linktoken TO regress_atk_creator;
CREATE EXTENSION linktoken;
-- ... and the installer's own schema is fine.
REVOKE CREATE ON SCHEMA linktoken FROM regress_atk_creator;
CREATE EXTENSION linktoken;
SELECT extname, nspowner::regrole AS owner FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace;
\set SHOW_CONTEXT errors
\c linktoken_regress
DROP DATABASE regress_atk_db;

-- 3. The gateway role guesses codes and rolls back. Attempts (and their audit rows) were
--    written in the caller's transaction, so ROLLBACK erased them.
CREATE ROLE regress_atk_gw IN ROLE linktoken_gateway;
CREATE TABLE public.atk_scratch (n int);
GRANT INSERT, SELECT ON public.atk_scratch TO regress_atk_gw;
SELECT linktoken.define_purpose('atk_code', '10 minutes', code_digits => 6, max_attempts => 5);
SELECT token, code FROM linktoken.issue_with_code('atk_code', 'victim@example.org') \gset
SELECT lpad(((:'code'::int + 1) % 1000000)::text, 6, '0') AS wrong \gset
SET ROLE regress_atk_gw;
BEGIN;
INSERT INTO atk_scratch VALUES (1);
SELECT status, attempts_left FROM linktoken.redeem_code('atk_code', 'victim@example.org', :'wrong');
ROLLBACK;
BEGIN;
INSERT INTO atk_scratch VALUES (2);
SELECT status, attempts_left FROM linktoken.redeem_code('atk_code', 'victim@example.org', :'wrong');
ROLLBACK;
BEGIN;
SELECT status, attempts_left FROM linktoken.redeem_code('atk_code', 'victim@example.org', :'wrong');
ROLLBACK;
-- The same with an error after the answer (the statement rolls back, the count does not).
SELECT try(format($$SELECT 1 / (attempts_left - attempts_left) FROM linktoken.redeem_code('atk_code', 'victim@example.org', %L)$$, :'wrong'));
-- A subtransaction rolled back does not help either.
BEGIN;
SAVEPOINT s;
SELECT status, attempts_left FROM linktoken.redeem_code('atk_code', 'victim@example.org', :'wrong');
ROLLBACK TO SAVEPOINT s;
COMMIT;
-- Positive control: the rollbacks really happened (the rows written beside the guesses are gone).
SELECT count(*) AS scratch_rows FROM atk_scratch;
-- The five guesses were counted: even the right code is refused now.
SELECT status, attempts_left FROM linktoken.redeem_code('atk_code', 'victim@example.org', :'code');
-- A REPEATABLE READ transaction whose snapshot predates its own guesses (the counting
-- workers' commits are invisible to it) is locked out just the same.
RESET ROLE;
SELECT token AS token2, code AS code2 FROM linktoken.issue_with_code('atk_code', 'victim2@example.org') \gset
SELECT lpad(((:'code2'::int + 1) % 1000000)::text, 6, '0') AS wrong2 \gset
SET ROLE regress_atk_gw;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) AS snapshot_taken FROM atk_scratch;
SELECT status FROM linktoken.redeem_code('atk_code', 'victim2@example.org', :'wrong2');
SELECT status FROM linktoken.redeem_code('atk_code', 'victim2@example.org', :'wrong2');
SELECT status FROM linktoken.redeem_code('atk_code', 'victim2@example.org', :'wrong2');
SELECT status FROM linktoken.redeem_code('atk_code', 'victim2@example.org', :'wrong2');
SELECT status FROM linktoken.redeem_code('atk_code', 'victim2@example.org', :'wrong2');
SELECT status, attempts_left FROM linktoken.redeem_code('atk_code', 'victim2@example.org', :'code2');
ROLLBACK;
RESET ROLE;
-- The audit rows of the guesses survived the rollbacks too.
SELECT status, count(*) FROM linktoken.events
WHERE purpose = 'atk_code' AND event = 'rejected' GROUP BY status ORDER BY status;
-- Wrong codes never lock the 256-bit link: the victim's mail still works.
SELECT status FROM linktoken.peek(:'token', 'atk_code') AS victims_link;

-- 4. Actions whose pinned search_path names a schema other roles may create in: another role
--    could plant a function or operator there and run it as the action's owner.
CREATE ROLE regress_atk_app;
CREATE ROLE regress_atk_other;
CREATE SCHEMA atk_app AUTHORIZATION regress_atk_app;
SET ROLE regress_atk_app;
CREATE FUNCTION atk_app.act(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = atk_app, pg_catalog, pg_temp
AS $$ SELECT jsonb_build_object('ran_as', current_user::text) $$;
CREATE FUNCTION atk_app.act_missing(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE sql SECURITY DEFINER SET search_path = atk_app, atk_nowhere, pg_catalog, pg_temp
AS $$ SELECT '{}'::jsonb $$;
RESET ROLE;
-- Positive control: in its own schema the action is accepted and runs as its owner.
SELECT linktoken.define_purpose('atk_act', '1 hour', action => 'atk_app.act(text,jsonb,jsonb)');
SELECT linktoken.issue('atk_act', 's1') AS act_tok \gset
SELECT status, result FROM linktoken.redeem(:'act_tok', 'atk_act');
-- Another role gets CREATE there: redeem refuses to run the action, the token stays usable.
GRANT CREATE ON SCHEMA atk_app TO regress_atk_other;
SELECT linktoken.issue('atk_act', 's2') AS act_tok2 \gset
\set VERBOSITY sqlstate
SELECT * FROM linktoken.redeem(:'act_tok2', 'atk_act');
\set VERBOSITY default
SELECT * FROM linktoken.redeem(:'act_tok2', 'atk_act');
SELECT status FROM linktoken.peek(:'act_tok2', 'atk_act');
SELECT try($$SELECT linktoken.define_purpose('atk_act', '1 hour', action => 'atk_app.act(text,jsonb,jsonb)')$$);
-- PUBLIC with CREATE, and a schema that does not exist, are refused as well.
REVOKE CREATE ON SCHEMA atk_app FROM regress_atk_other;
GRANT CREATE ON SCHEMA atk_app TO PUBLIC;
SELECT try($$SELECT linktoken.define_purpose('atk_act', '1 hour', action => 'atk_app.act(text,jsonb,jsonb)')$$);
REVOKE CREATE ON SCHEMA atk_app FROM PUBLIC;
SELECT try($$SELECT linktoken.define_purpose('atk_act2', '1 hour', action => 'atk_app.act_missing(text,jsonb,jsonb)')$$);
-- A schema owned by another (non-superuser) role is refused.
ALTER SCHEMA atk_app OWNER TO regress_atk_other;
SELECT try($$SELECT linktoken.define_purpose('atk_act', '1 hour', action => 'atk_app.act(text,jsonb,jsonb)')$$);
ALTER SCHEMA atk_app OWNER TO regress_atk_app;
SELECT status, result FROM linktoken.redeem(:'act_tok2', 'atk_act');

-- Clean up.
SELECT linktoken.define_purpose('atk_act', '1 hour', action => NULL);
DROP SCHEMA atk CASCADE;
DROP SCHEMA atk_app CASCADE;
DROP TABLE public.atk_scratch;
DROP ROLE regress_atk_issuer, regress_atk_plain, regress_atk_creator, regress_atk_gw,
          regress_atk_app, regress_atk_other;
