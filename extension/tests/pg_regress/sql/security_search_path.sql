-- CVE-2018-1058-style attack: a role that may create objects in a schema the callers have
-- early in their search_path plants same-named functions, aggregates and operators there, and
-- same-named temporary relations in the session, all of which record that they ran in a
-- side-effect table. Then the application, the gateway and the owner call linktoken's
-- functions with that search_path: the side-effect table must stay empty and every result
-- must be right. A positive control first shows that the traps do fire for ordinary queries.

CREATE ROLE regress_attacker LOGIN;
CREATE ROLE regress_sp_web LOGIN IN ROLE linktoken_issuer;
CREATE ROLE regress_sp_gw LOGIN IN ROLE linktoken_gateway;
-- A schema everybody uses and the attacker may create in (like public before PostgreSQL 15).
CREATE SCHEMA sp_shared;
GRANT USAGE ON SCHEMA sp_shared TO PUBLIC;
GRANT CREATE ON SCHEMA sp_shared TO regress_attacker;

-- The application: a users table whose password change revokes reset links, and the action
-- that redeem runs (SECURITY DEFINER with a pinned search_path, as define_purpose requires).
CREATE ROLE regress_sp_app NOLOGIN;
CREATE SCHEMA sp_app AUTHORIZATION regress_sp_app;
CREATE TABLE sp_app.users (id text PRIMARY KEY, password text, reset_at timestamptz);
ALTER TABLE sp_app.users OWNER TO regress_sp_app;
INSERT INTO sp_app.users VALUES ('u:1', 'old', NULL);
GRANT USAGE ON SCHEMA sp_app TO regress_sp_web;
GRANT UPDATE (password) ON sp_app.users TO regress_sp_web;
CREATE FUNCTION sp_app.reset(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = sp_app, pg_catalog, pg_temp AS $$
BEGIN
    UPDATE sp_app.users SET reset_at = now() WHERE id = subject;
    RETURN jsonb_build_object('reset', subject, 'new_password_length', length(form->>'password'));
END
$$;
ALTER FUNCTION sp_app.reset(text, jsonb, jsonb) OWNER TO regress_sp_app;
CREATE TRIGGER users_revoke_links AFTER UPDATE OF password ON sp_app.users
    FOR EACH ROW EXECUTE FUNCTION linktoken.revoke_on_change('id', 'sp_reset');
SELECT linktoken.define_purpose('sp_reset', '1 hour', action => 'sp_app.reset(text,jsonb,jsonb)');
SELECT linktoken.define_purpose('sp_code', '10 minutes', code_digits => 6);
SELECT linktoken.define_purpose('sp_unsub', '30 days', max_uses => 1, revoke_previous => false);
SELECT linktoken.set_page('sp_reset', '{"title": "New password", "fields": [{"name": "password", "type": "password", "label": "New password", "required": true}]}');

-- The attacker's side-effect table, written by trap() with the privileges of whoever ends up
-- running it (everyone may insert), recording which role that was.
SET ROLE regress_attacker;
CREATE TABLE sp_shared.attack_log (what text NOT NULL, ran_as text NOT NULL);
GRANT INSERT ON sp_shared.attack_log TO PUBLIC;
CREATE FUNCTION sp_shared.trap(what text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO sp_shared.attack_log VALUES (what, current_user);
    RETURN true;
END
$$;

-- Same-named functions: each records itself, then does what the built-in does (so only the
-- side-effect table can tell). Functions linktoken's SQL and SPI statements call, hashing and
-- randomness a token implementation might call (sha256, digest, gen_random_bytes, hmac,
-- encode, decode), and common string and JSON functions.
DO $do$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('now', '', 'timestamptz', 'pg_catalog.now()'),
        ('clock_timestamp', '', 'timestamptz', 'pg_catalog.clock_timestamp()'),
        ('statement_timestamp', '', 'timestamptz', 'pg_catalog.statement_timestamp()'),
        ('transaction_timestamp', '', 'timestamptz', 'pg_catalog.transaction_timestamp()'),
        ('to_timestamp', 'x double precision', 'timestamptz', 'pg_catalog.to_timestamp(x)'),
        ('sha256', 'x bytea', 'bytea', 'pg_catalog.sha256(x)'),
        ('digest', 'x bytea, alg text', 'bytea', 'pg_catalog.sha256(x)'),
        ('digest', 'x text, alg text', 'bytea', $$pg_catalog.sha256(pg_catalog.convert_to(x, 'UTF8'))$$),
        ('hmac', 'x bytea, k bytea, alg text', 'bytea', 'pg_catalog.sha256(x)'),
        ('gen_random_bytes', 'n integer', 'bytea', $$pg_catalog.sha256('\x00'::bytea)$$),
        ('gen_random_uuid', '', 'uuid', 'pg_catalog.gen_random_uuid()'),
        ('encode', 'x bytea, f text', 'text', 'pg_catalog.encode(x, f)'),
        ('decode', 'x text, f text', 'bytea', 'pg_catalog.decode(x, f)'),
        ('md5', 'x text', 'text', 'pg_catalog.md5(x)'),
        ('lower', 'x text', 'text', 'pg_catalog.lower(x)'),
        ('upper', 'x text', 'text', 'pg_catalog.upper(x)'),
        ('length', 'x text', 'integer', 'pg_catalog.length(x)'),
        ('octet_length', 'x bytea', 'integer', 'pg_catalog.octet_length(x)'),
        ('octet_length', 'x text', 'integer', 'pg_catalog.octet_length(x)'),
        ('left', 'x text, n integer', 'text', 'pg_catalog.left(x, n)'),
        ('strpos', 'x text, y text', 'integer', 'pg_catalog.strpos(x, y)'),
        ('quote_ident', 'x text', 'text', 'pg_catalog.quote_ident(x)'),
        ('format', 'f text', 'text', 'pg_catalog.format(f)'),
        ('format', 'f text, a text', 'text', 'pg_catalog.format(f, a)'),
        ('jsonb_build_object', 'k text, v text', 'jsonb', 'pg_catalog.jsonb_build_object(k, v)'),
        ('jsonb_build_object', 'k text, v jsonb', 'jsonb', 'pg_catalog.jsonb_build_object(k, v)'),
        ('to_jsonb', 'x anyelement', 'jsonb', 'pg_catalog.to_jsonb(x)'),
        ('jsonb_typeof', 'x jsonb', 'text', 'pg_catalog.jsonb_typeof(x)'),
        ('hashtext', 'x text', 'integer', 'pg_catalog.hashtext(x)'),
        ('current_setting', 'x text', 'text', 'pg_catalog.current_setting(x)'),
        ('current_setting', 'x text, m boolean', 'text', 'pg_catalog.current_setting(x, m)'),
        ('set_config', 'x text, y text, l boolean', 'text', 'pg_catalog.set_config(x, y, l)'),
        ('nextval', 'x regclass', 'bigint', 'pg_catalog.nextval(x)'),
        ('ceil', 'x numeric', 'numeric', 'pg_catalog.ceil(x)'),
        ('ceil', 'x double precision', 'double precision', 'pg_catalog.ceil(x)'),
        ('unnest', 'x text[]', 'SETOF text', NULL),
        ('pg_advisory_xact_lock', 'a integer, b integer', 'void', NULL)
    ) AS v(name, args, ret, call)
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION sp_shared.%I(%s) RETURNS %s LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS %L',
            f.name, f.args, f.ret,
            pg_catalog.format('BEGIN PERFORM sp_shared.trap(%L); %s END', f.name || '(' || f.args || ')',
                CASE f.name
                    WHEN 'unnest' THEN 'RETURN QUERY SELECT pg_catalog.unnest(x);'
                    WHEN 'pg_advisory_xact_lock' THEN 'PERFORM pg_catalog.pg_advisory_xact_lock(a, b);'
                    ELSE 'RETURN ' || f.call || ';'
                END));
    END LOOP;
END
$do$;
-- Same-named aggregates.
CREATE FUNCTION sp_shared.max_step(a timestamptz, b timestamptz) RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM sp_shared.trap('max(timestamptz)'); RETURN pg_catalog.greatest(a, b); END $$;
CREATE AGGREGATE sp_shared.max(timestamptz) (SFUNC = sp_shared.max_step, STYPE = timestamptz);
CREATE FUNCTION sp_shared.bool_or_step(a boolean, b boolean) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM sp_shared.trap('bool_or(boolean)'); RETURN a OR b; END $$;
CREATE AGGREGATE sp_shared.bool_or(boolean) (SFUNC = sp_shared.bool_or_step, STYPE = boolean);
CREATE FUNCTION sp_shared.count_step(n bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM sp_shared.trap('count(*)'); RETURN n OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE sp_shared.count(*) (SFUNC = sp_shared.count_step, STYPE = bigint, INITCOND = '0');
-- Same-named operators on the types linktoken compares: hashes (bytea), names, ids, times,
-- JSON; each records itself and then applies the built-in operator.
DO $do$
DECLARE
    o record;
    i integer := 0;
BEGIN
    FOR o IN SELECT * FROM (VALUES
        ('=', 'bytea', 'bytea', 'boolean'), ('=', 'text', 'text', 'boolean'),
        ('<>', 'text', 'text', 'boolean'), ('=', 'bigint', 'bigint', 'boolean'),
        ('=', 'integer', 'integer', 'boolean'), ('<', 'integer', 'integer', 'boolean'),
        ('>=', 'integer', 'integer', 'boolean'), ('+', 'integer', 'integer', 'integer'),
        ('-', 'integer', 'integer', 'integer'),
        ('<', 'timestamptz', 'timestamptz', 'boolean'), ('<=', 'timestamptz', 'timestamptz', 'boolean'),
        ('>', 'timestamptz', 'timestamptz', 'boolean'), ('>=', 'timestamptz', 'timestamptz', 'boolean'),
        ('+', 'timestamptz', 'interval', 'timestamptz'), ('-', 'timestamptz', 'interval', 'timestamptz'),
        ('-', 'timestamptz', 'timestamptz', 'interval'),
        ('||', 'text', 'text', 'text'), ('~~', 'text', 'text', 'boolean'),
        ('?', 'jsonb', 'text', 'boolean'), ('->', 'jsonb', 'text', 'jsonb'), ('->>', 'jsonb', 'text', 'text')
    ) AS v(op, l, r, ret)
    LOOP
        i := i + 1;
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION sp_shared.op_%s(l %s, r %s) RETURNS %s LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS %L',
            i, o.l, o.r, o.ret,
            pg_catalog.format('BEGIN PERFORM sp_shared.trap(%L); RETURN l OPERATOR(pg_catalog.%s) r; END',
                o.op || ' (' || o.l || ', ' || o.r || ')', o.op));
        EXECUTE pg_catalog.format('CREATE OPERATOR sp_shared.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = sp_shared.op_%s)',
            o.op, o.l, o.r, i);
    END LOOP;
END
$do$;
SELECT count(*) AS planted_functions FROM pg_catalog.pg_proc WHERE pronamespace = 'sp_shared'::regnamespace;
SELECT count(*) AS planted_operators FROM pg_catalog.pg_operator WHERE oprnamespace = 'sp_shared'::regnamespace;

-- Same-named temporary relations in the session (the temporary schema comes first for
-- relations unless search_path lists it): views over bait rows that record every read, with
-- INSTEAD OF triggers that record every write; a table for the audit log; sequences far ahead.
CREATE FUNCTION sp_shared.write_trap() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM sp_shared.trap(TG_OP || ' on temp ' || TG_TABLE_NAME); RETURN coalesce(NEW, OLD); END $$;
CREATE TEMP VIEW tokens AS
    SELECT '\x00'::bytea AS token_hash, 'sp_reset'::text AS purpose, 'attacker'::text AS subject,
           '{"bait": true}'::jsonb AS payload, '2000-01-01'::timestamptz AS created_at,
           'infinity'::timestamptz AS expires_at, NULL::integer AS max_uses, 0 AS use_count,
           NULL::timestamptz AS last_used_at, NULL::timestamptz AS consumed_at, NULL::timestamptz AS revoked_at,
           NULL::bytea AS code_hash, NULL::integer AS code_kid, NULL::bytea AS bind_hash
    WHERE sp_shared.trap('read temp tokens');
CREATE TEMP VIEW purposes AS
    SELECT p.name, '100 years'::interval AS ttl, NULL::integer AS max_uses, false AS revoke_previous,
           NULL::regprocedure AS action, '{}'::jsonb AS page, now() AS created_at, now() AS updated_at,
           NULL::interval AS min_interval, 6 AS code_digits, 1000 AS max_attempts, false AS bind_browser
    FROM (VALUES ('sp_reset'), ('sp_code'), ('sp_unsub')) AS p(name)
    WHERE sp_shared.trap('read temp purposes');
CREATE TEMP VIEW keys AS
    SELECT 1 AS kid, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea AS secret,
           now() AS created_at, NULL::timestamptz AS retired_at
    WHERE sp_shared.trap('read temp keys');
CREATE TEMP VIEW spent AS
    SELECT '\x00'::bytea AS token_hash, 'sp_unsub'::text AS purpose, 0 AS uses,
           'infinity'::timestamptz AS expires_at, NULL::timestamptz AS revoked_at
    WHERE sp_shared.trap('read temp spent');
CREATE TEMP VIEW code_attempts AS
    SELECT 'sp_code'::text AS purpose, 'u:1'::text AS subject, 0 AS failures, 'infinity'::timestamptz AS window_until
    WHERE sp_shared.trap('read temp code_attempts');
CREATE TEMP TABLE events (id bigint, at timestamptz, event text, status text, purpose text, subject text,
                          client_ip text, user_agent text, detail jsonb, token_hash bytea);
CREATE TRIGGER trap_writes BEFORE INSERT OR UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION sp_shared.write_trap();
DO $do$
DECLARE
    v text;
BEGIN
    FOREACH v IN ARRAY ARRAY['tokens', 'purposes', 'keys', 'spent', 'code_attempts'] LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER trap_writes INSTEAD OF INSERT OR UPDATE OR DELETE ON pg_temp.%I
            FOR EACH ROW EXECUTE FUNCTION sp_shared.write_trap()', v);
    END LOOP;
END
$do$;
CREATE TEMP SEQUENCE events_id_seq START 900000000;
GRANT ALL ON tokens, purposes, keys, spent, code_attempts, events TO PUBLIC;
GRANT ALL ON SEQUENCE events_id_seq TO PUBLIC;
RESET ROLE;

-- Positive control: for ordinary statements of a caller with this search_path, the traps fire
-- (functions, operators, aggregates, reads and writes of the temporary relations).
SET ROLE regress_sp_web;
SET search_path = sp_shared, pg_catalog, public;
SELECT now() IS NOT NULL AS a, 'x' = 'x' AS b, sha256('x') IS NOT NULL AS c, count(*) AS bait_purposes FROM purposes;
INSERT INTO events (event) VALUES ('issued');
RESET search_path;
RESET ROLE;
SELECT DISTINCT what, ran_as FROM sp_shared.attack_log ORDER BY 1;
TRUNCATE pg_temp.events, sp_shared.attack_log;

-- The attack: every entry point, called by each role with the attacker's schema first and
-- pg_catalog explicitly after it. Tokens stay in psql variables.
SET ROLE regress_sp_web;
SET search_path = sp_shared, pg_catalog, public;
SELECT linktoken.issue('sp_reset', 'u:1') AS reset_tok \gset
SELECT linktoken.issue('sp_reset', 'u:9') AS other_tok \gset
SELECT token AS code_tok, code AS code FROM linktoken.issue_with_code('sp_code', 'u:1') \gset
SELECT linktoken.seal('sp_unsub', 'list:1') AS sealed_tok \gset
SELECT linktoken.issue('sp_unsub', 'u:1') AS unsub_tok \gset
SELECT status, subject, uses_left FROM linktoken.peek(:'reset_tok', 'sp_reset');
SELECT status, subject FROM linktoken.peek(:'sealed_tok', 'sp_unsub');
SELECT linktoken.revoke(:'unsub_tok') AS revoked;
SELECT status FROM linktoken.peek(:'unsub_tok', 'sp_unsub');
SELECT status FROM linktoken.peek('ltk_not-a-token', 'sp_reset');
RESET ROLE;

SET ROLE regress_sp_gw;
SET search_path = sp_shared, pg_catalog, public;
SELECT status, purpose, uses_left FROM linktoken.gateway_peek(:'reset_tok');
SELECT status, purpose FROM linktoken.gateway_redeem(:'reset_tok', '{}');
SELECT status, purpose, result FROM linktoken.gateway_redeem(:'reset_tok', '{"password": "correct horse battery"}');
SELECT status FROM linktoken.redeem(:'reset_tok', 'sp_reset', '{"password": "again"}');
SELECT linktoken.gateway_code_page('sp_code') IS NOT NULL AS code_page;
SELECT status, attempts_left FROM linktoken.redeem_code('sp_code', 'u:1', '000000x');
SELECT status, subject FROM linktoken.redeem_code('sp_code', 'u:1', :'code');
SELECT status FROM linktoken.peek(:'code_tok', 'sp_code');
SELECT status, subject FROM linktoken.redeem(:'sealed_tok', 'sp_unsub');
SELECT status FROM linktoken.redeem(:'sealed_tok', 'sp_unsub');
SELECT status FROM linktoken.redeem(:'unsub_tok', 'sp_unsub');
RESET ROLE;

-- The application: a new reset link, then the password changes and the trigger revokes it;
-- revoke_subject ends another subject's link.
SET ROLE regress_sp_web;
SET search_path = sp_shared, pg_catalog, public;
SELECT linktoken.issue('sp_reset', 'u:1') AS again_tok \gset
SELECT status FROM linktoken.peek(:'again_tok', 'sp_reset');
UPDATE sp_app.users SET password = 'new';
SELECT status FROM linktoken.peek(:'again_tok', 'sp_reset');
SELECT linktoken.revoke_subject('u:9', 'sp_reset') AS revoked_for_u9;
SELECT status FROM linktoken.peek(:'other_tok', 'sp_reset');
RESET ROLE;

-- The owner (a superuser) with the same search_path.
SET search_path = sp_shared, pg_catalog, public;
SELECT linktoken.define_purpose('sp_owner', '1 hour', max_uses => 2);
SELECT linktoken.set_page('sp_owner', '{"title": "Owner"}');
SELECT linktoken.rotate_key() IS NOT NULL AS rotated;
SELECT linktoken.issue('sp_owner', 'o:1') AS owner_tok \gset
SELECT status, subject FROM linktoken.redeem(:'owner_tok', 'sp_owner');
SELECT linktoken.purge() >= 0 AS purged;
RESET search_path;

-- Nothing of the attacker's ran ...
SELECT what, ran_as FROM sp_shared.attack_log ORDER BY 1;
SELECT count(*) AS rows_in_temp_events FROM pg_temp.events;
-- ... and everything went to linktoken's own tables: lifetimes from the real purposes (not the
-- bait's 100 years), ids from the real sequence, the action ran, the audit log has the events.
SELECT purpose, subject, expires_at - created_at AS lifetime, use_count, revoked_at IS NOT NULL AS revoked
FROM linktoken.tokens WHERE purpose LIKE 'sp\_%' ORDER BY purpose, subject, use_count, revoked;
SELECT id, password, reset_at IS NOT NULL AS action_ran FROM sp_app.users;
SELECT event, status, purpose, count(*) FROM linktoken.events
WHERE purpose LIKE 'sp\_%' AND id < 900000000 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- the uses that consumed stored tokens are recorded in their rows (0.7.0), which the audit view shows
SELECT event, status, purpose, count(*) FROM linktoken.audit
WHERE purpose LIKE 'sp\_%' AND event = 'redeemed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT count(*) AS spent_sealed FROM linktoken.spent WHERE purpose = 'sp_unsub';

-- Clean up.
DROP VIEW pg_temp.tokens, pg_temp.purposes, pg_temp.keys, pg_temp.spent, pg_temp.code_attempts;
DROP TABLE pg_temp.events;
DROP SEQUENCE pg_temp.tokens_id_seq, pg_temp.events_id_seq;
DROP TRIGGER users_revoke_links ON sp_app.users;
DROP SCHEMA sp_app CASCADE;
DROP OWNED BY regress_attacker;
DROP SCHEMA sp_shared;
DROP ROLE regress_attacker, regress_sp_web, regress_sp_gw, regress_sp_app;
