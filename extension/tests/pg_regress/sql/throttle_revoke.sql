-- 0.2.0: issue throttling (min_interval) and automatic revocation (revoke_on_change).

-- min_interval: a second token for the same subject too soon raises 53400 with the seconds to wait.
SELECT linktoken.define_purpose('tr_login', '15 minutes', min_interval => '60 seconds');
SELECT min_interval FROM linktoken.purposes WHERE name = 'tr_login';
SELECT linktoken.issue('tr_login', 'tr:1') AS first \gset
SELECT regexp_replace(try($$SELECT linktoken.issue('tr_login', 'tr:1')$$), 'wait \d+ seconds', 'wait N seconds') AS throttled;
DO $$
DECLARE
    wait text;
BEGIN
    PERFORM linktoken.issue('tr_login', 'tr:1');
    RAISE NOTICE 'not throttled';
EXCEPTION WHEN SQLSTATE '53400' THEN
    GET STACKED DIAGNOSTICS wait = PG_EXCEPTION_DETAIL;
    RAISE NOTICE '53400; DETAIL is the seconds to wait, between 1 and 60: %', wait::int BETWEEN 1 AND 60;
END
$$;
-- the first token is untouched, other subjects are not throttled
SELECT status FROM linktoken.peek(:'first', 'tr_login');
SELECT length(linktoken.issue('tr_login', 'tr:2')) AS other_subject;
-- once the interval has passed, issuing works again (and revokes the earlier token)
UPDATE linktoken.tokens SET created_at = created_at - interval '61 seconds' WHERE subject = 'tr:1';
SELECT length(linktoken.issue('tr_login', 'tr:1')) AS after_interval;
SELECT status FROM linktoken.peek(:'first', 'tr_login');
SELECT try($$SELECT linktoken.define_purpose('tr_x', '1 hour', min_interval => '0 seconds')$$);
-- define_purpose without min_interval removes the throttle
SELECT linktoken.define_purpose('tr_login', '15 minutes');
SELECT length(linktoken.issue('tr_login', 'tr:1')) AS unthrottled;

-- revoke_on_change: a password or email change ends the user's reset and sign-in links.
SELECT linktoken.define_purpose('tr_reset', '1 hour');
SELECT linktoken.define_purpose('tr_magic', '15 minutes');
SELECT linktoken.define_purpose('tr_newsletter', '1 year', max_uses => NULL, revoke_previous => false);
CREATE TABLE tr_users (id int PRIMARY KEY, email text, password_hash text, last_seen timestamptz);
INSERT INTO tr_users VALUES (1, 'anna@example.org', 'h1', now()), (2, 'ben@example.org', 'h2', now());
CREATE TRIGGER tr_users_revoke AFTER UPDATE OF password_hash, email ON tr_users
    FOR EACH ROW EXECUTE FUNCTION linktoken.revoke_on_change('id', 'tr_reset', 'tr_magic');
SELECT linktoken.issue('tr_reset', '1') AS reset1 \gset
SELECT linktoken.issue('tr_magic', '1') AS magic1 \gset
SELECT linktoken.issue('tr_newsletter', '1') AS news1 \gset
SELECT linktoken.issue('tr_reset', '2') AS reset2 \gset
-- a watched column named in SET but not really changed: nothing happens
UPDATE tr_users SET password_hash = password_hash, last_seen = now() WHERE id = 1;
SELECT (SELECT status FROM linktoken.peek(:'reset1', 'tr_reset')) AS reset,
       (SELECT status FROM linktoken.peek(:'magic1', 'tr_magic')) AS magic;
-- an unwatched column: nothing happens
UPDATE tr_users SET last_seen = now() WHERE id = 1;
SELECT (SELECT status FROM linktoken.peek(:'reset1', 'tr_reset')) AS reset;
-- the password really changes: user 1's reset and sign-in links end; the newsletter link and
-- user 2's links stay
UPDATE tr_users SET password_hash = 'h1-new' WHERE id = 1;
SELECT (SELECT status FROM linktoken.peek(:'reset1', 'tr_reset')) AS reset,
       (SELECT status FROM linktoken.peek(:'magic1', 'tr_magic')) AS magic,
       (SELECT status FROM linktoken.peek(:'news1', 'tr_newsletter')) AS newsletter,
       (SELECT status FROM linktoken.peek(:'reset2', 'tr_reset')) AS other_user;
SELECT event, purpose, subject, detail FROM linktoken.events
WHERE event = 'revoked' AND purpose IN ('tr_reset', 'tr_magic') ORDER BY id;
-- an email change does the same
SELECT linktoken.issue('tr_reset', '2') AS reset2b \gset
UPDATE tr_users SET email = 'ben@example.net' WHERE id = 2;
SELECT status FROM linktoken.peek(:'reset2b', 'tr_reset');

-- Misuse is a clear error that stops the UPDATE.
CREATE TRIGGER tr_users_bad AFTER UPDATE OF email ON tr_users
    FOR EACH ROW EXECUTE FUNCTION linktoken.revoke_on_change('no_such_column', 'tr_reset');
SELECT try($$UPDATE tr_users SET email = 'x@example.org' WHERE id = 1$$);
DROP TRIGGER tr_users_bad ON tr_users;
CREATE TRIGGER tr_users_bad AFTER UPDATE OF email ON tr_users
    FOR EACH ROW EXECUTE FUNCTION linktoken.revoke_on_change('id');
SELECT try($$UPDATE tr_users SET email = 'x@example.org' WHERE id = 1$$);
DROP TRIGGER tr_users_bad ON tr_users;
CREATE TRIGGER tr_users_bad AFTER UPDATE OF email ON tr_users
    FOR EACH ROW EXECUTE FUNCTION linktoken.revoke_on_change('id', 'tr_nope');
SELECT try($$UPDATE tr_users SET email = 'x@example.org' WHERE id = 1$$);
DROP TRIGGER tr_users_bad ON tr_users;
SELECT email FROM tr_users WHERE id = 1;
DROP TABLE tr_users;
