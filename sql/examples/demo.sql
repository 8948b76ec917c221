-- The demo: purposes, then issue -> peek -> redeem -> redeem again, as an app would.
\set ON_ERROR_STOP on
\pset footer off
\echo
\echo '== 1. Purposes: what tokens are for, how long they live, how often they may be used'
-- The action is owned by a plain NOLOGIN role, so it runs with that role's privileges only.
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_app') AS create_role \gset
\if :create_role
    CREATE ROLE demo_app NOLOGIN;
\endif
CREATE SCHEMA IF NOT EXISTS app AUTHORIZATION demo_app;
SET ROLE demo_app;
CREATE TABLE IF NOT EXISTS app.users (id int PRIMARY KEY, email text NOT NULL, verified boolean NOT NULL DEFAULT false);
INSERT INTO app.users VALUES (42, 'anna@example.org', false) ON CONFLICT (id) DO UPDATE SET verified = false;
CREATE OR REPLACE FUNCTION app.mark_verified(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = app, pg_catalog, pg_temp AS $$
BEGIN
    UPDATE app.users SET verified = true WHERE id = subject::int;
    RETURN jsonb_build_object('verified_user', subject::int, 'ran_as', current_user);
END
$$;
RESET ROLE;
\o /dev/null
SELECT linktoken.define_purpose('verify_email', '24 hours', action => 'app.mark_verified(text,jsonb,jsonb)');
SELECT linktoken.define_purpose('password_reset', '1 hour');
SELECT linktoken.define_purpose('unsubscribe', '1 year', max_uses => NULL, revoke_previous => false);
\o
SELECT name, ttl, coalesce(max_uses::text, 'unlimited') AS max_uses, revoke_previous, action FROM linktoken.purposes ORDER BY name;

\echo
\echo '== 2. issue(): the only moment the token exists in clear. Put it into the email link.'
SELECT linktoken.issue('verify_email', '42', '{"email": "anna@example.org"}') AS token \gset
\echo 'token:' :token
\echo 'link:  https://links.example.org/t/':token

\echo
\echo '== 3. What the database keeps: its SHA-256, never the token'
SELECT purpose, subject, encode(token_hash, 'hex') AS token_hash, expires_at, use_count
FROM linktoken.tokens ORDER BY created_at DESC LIMIT 1;

\echo
\echo '== 4. peek(): a link click (or a mail scanner) looks, nothing changes'
SELECT * FROM linktoken.peek(:'token', 'verify_email');
SELECT * FROM linktoken.peek(:'token', 'verify_email');

\echo
\echo '== 5. redeem(): the POST from the landing page consumes it and runs the action, in one transaction'
SELECT * FROM linktoken.redeem(:'token', 'verify_email');
SELECT id, email, verified FROM app.users WHERE id = 42;

\echo
\echo '== 6. redeem() again: already used, no error, nothing runs twice'
SELECT * FROM linktoken.redeem(:'token', 'verify_email');

\echo
\echo '== 7. Other statuses: wrong purpose, malformed, revoked'
SELECT linktoken.issue('password_reset', '42') AS reset \gset
SELECT 'other purpose' AS case, status FROM linktoken.peek(:'reset', 'verify_email')
UNION ALL SELECT 'one character changed', status FROM linktoken.peek(overlay(:'reset' placing 'x' from 20 for 1), 'password_reset')
UNION ALL SELECT 'garbage', status FROM linktoken.peek('https://evil.example/?q=1', 'password_reset');
SELECT linktoken.revoke_subject('42') AS revoked_after_password_change;
SELECT status FROM linktoken.peek(:'reset', 'password_reset');

\echo
\echo '== 8. The audit log: events by token hash, never the token'
SELECT at::time(0) AS at, event, status, purpose, subject, left(encode(token_hash, 'hex'), 12) AS token FROM linktoken.audit ORDER BY at DESC LIMIT 8;
