-- Typed codes: one token row reachable by link or by code; wrong codes counted per subject
-- across re-issues; locked at max_attempts, the link too.
SELECT linktoken.define_purpose('cd_login', '10 minutes', code_digits => 6, max_attempts => 3);
SELECT code_digits, max_attempts FROM linktoken.purposes WHERE name = 'cd_login';
SELECT token, code FROM linktoken.issue_with_code('cd_login', 'anna@example.org') \gset
SELECT :'token' ~ '^ltk_' AS link_token, :'code' ~ '^[0-9]{6}$' AS six_digits;
-- only a keyed hash of the code is stored
SELECT octet_length(code_hash) AS code_hash_bytes, code_kid IS NOT NULL AS keyed,
       code_hash <> sha256(convert_to(:'code', 'UTF8')) AS not_a_plain_hash
FROM linktoken.tokens WHERE purpose = 'cd_login' AND subject = 'anna@example.org';
-- a wrong code: status and attempts left; nothing consumed
SELECT lpad(((:'code'::int + 1) % 1000000)::text, 6, '0') AS wrong \gset
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'anna@example.org', :'wrong');
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'anna@example.org', 'not digits');
-- the code belongs to its subject
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'ben@example.org', :'code');
-- the right code (spaces are fine) redeems, like redeem(): once
SELECT status, subject, attempts_left FROM linktoken.redeem_code('cd_login', 'anna@example.org', substr(:'code', 1, 3) || ' ' || substr(:'code', 4));
SELECT status FROM linktoken.peek(:'token', 'cd_login');
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'anna@example.org', :'code');
SELECT count(*) AS attempts_rows_after_success FROM linktoken.code_attempts WHERE subject = 'anna@example.org';

-- max_attempts wrong codes lock the subject: the code and the link
SELECT token, code FROM linktoken.issue_with_code('cd_login', 'carl@example.org') \gset
SELECT lpad(((:'code'::int + 1) % 1000000)::text, 6, '0') AS wrong \gset
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'carl@example.org', :'wrong');
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'carl@example.org', :'wrong');
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'carl@example.org', :'wrong');
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'carl@example.org', :'code');
SELECT status FROM linktoken.peek(:'token', 'cd_login') AS link;
SELECT status FROM linktoken.redeem(:'token', 'cd_login') AS link_redeem;
-- a new code does not reset the count while the window lasts
SELECT token AS token2, code AS code2 FROM linktoken.issue_with_code('cd_login', 'carl@example.org') \gset
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'carl@example.org', :'code2');
SELECT status FROM linktoken.peek(:'token2', 'cd_login') AS new_link;
-- after the window, the newest code works again
UPDATE linktoken.code_attempts SET window_until = now() - interval '1 second' WHERE subject = 'carl@example.org';
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'carl@example.org', :'code2');
SELECT event, status FROM linktoken.events WHERE purpose = 'cd_login' AND subject = 'carl@example.org' AND event <> 'issued' ORDER BY id;

-- the gateway can redeem by code; only purposes with codes have them
SELECT try($$SELECT linktoken.define_purpose('cd_x', '1 hour', code_digits => 5)$$);
SELECT try($$SELECT linktoken.define_purpose('cd_x', '1 hour', code_digits => 6, max_attempts => 0)$$);
SELECT linktoken.define_purpose('cd_plain', '1 hour');
SELECT try($$SELECT linktoken.issue_with_code('cd_plain', 'x')$$);
SELECT try($$SELECT linktoken.redeem_code('cd_plain', 'x', '123456')$$);
SELECT try($$SELECT linktoken.redeem_code('cd_login', NULL, '123456')$$);
SELECT try($$SELECT linktoken.redeem_code('cd_login', 'x', NULL)$$);
-- 8-digit codes
SELECT linktoken.define_purpose('cd_long', '1 hour', code_digits => 8);
SELECT length(code) FROM linktoken.issue_with_code('cd_long', 'x');
