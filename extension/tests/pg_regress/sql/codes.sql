-- Typed codes: one token row reachable by link or by code. Every attempt is counted per
-- (purpose, subject), hashed, across re-issued codes and outside the caller's transaction;
-- max_attempts within the window (or 100 in a row) lock the subject's codes, never its link.
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
-- the counter is kept by a hash of purpose:subject, never the subject itself
SELECT purpose, failures, consecutive, octet_length(attempt_key) AS key_bytes
FROM linktoken.code_attempts WHERE attempt_key = sha256(convert_to('cd_login:anna@example.org', 'UTF8'));
-- the code belongs to its subject; a subject with no code waiting is counted too
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'ben@example.org', :'code');
-- the right code (spaces are fine) redeems, like redeem(): once; the success ends anna's count
SELECT status, subject, attempts_left FROM linktoken.redeem_code('cd_login', 'anna@example.org', substr(:'code', 1, 3) || ' ' || substr(:'code', 4));
SELECT count(*) AS anna_counter_after_success FROM linktoken.code_attempts
WHERE attempt_key = sha256(convert_to('cd_login:anna@example.org', 'UTF8'));
SELECT status FROM linktoken.peek(:'token', 'cd_login');
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'anna@example.org', :'code');

-- max_attempts attempts lock the subject's codes; the link in the mail still works
SELECT token, code FROM linktoken.issue_with_code('cd_login', 'carl@example.org') \gset
SELECT lpad(((:'code'::int + 1) % 1000000)::text, 6, '0') AS wrong \gset
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'carl@example.org', :'wrong');
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'carl@example.org', :'wrong');
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'carl@example.org', :'wrong');
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'carl@example.org', :'code');
SELECT status FROM linktoken.peek(:'token', 'cd_login') AS link;
-- a new code does not reset the count while the window lasts
SELECT token AS token2, code AS code2 FROM linktoken.issue_with_code('cd_login', 'carl@example.org') \gset
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'carl@example.org', :'code2');
-- redeeming the link ends the lock-out
SELECT status FROM linktoken.redeem(:'token2', 'cd_login') AS new_link_redeem;
SELECT count(*) AS carl_counter_after_link FROM linktoken.code_attempts
WHERE attempt_key = sha256(convert_to('cd_login:carl@example.org', 'UTF8'));
SELECT event, status, subject FROM linktoken.audit
WHERE purpose = 'cd_login' AND (subject = 'carl@example.org' OR subject IS NULL) AND event <> 'issued' ORDER BY at, event;

-- after the window the count starts again
SELECT token, code FROM linktoken.issue_with_code('cd_login', 'dora@example.org') \gset
SELECT status FROM linktoken.redeem_code('cd_login', 'dora@example.org', '000000x');
SELECT status FROM linktoken.redeem_code('cd_login', 'dora@example.org', '000000x');
SELECT status FROM linktoken.redeem_code('cd_login', 'dora@example.org', '000000x');
UPDATE linktoken.code_attempts SET window_until = now() - interval '1 second'
WHERE attempt_key = sha256(convert_to('cd_login:dora@example.org', 'UTF8'));
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'dora@example.org', '000000x');
-- ... but 100 in a row lock the codes across windows (NIST SP 800-63B), until unlock_codes
UPDATE linktoken.code_attempts SET consecutive = 99
WHERE attempt_key = sha256(convert_to('cd_login:dora@example.org', 'UTF8'));
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'dora@example.org', '000000x');
UPDATE linktoken.code_attempts SET window_until = now() - interval '1 second'
WHERE attempt_key = sha256(convert_to('cd_login:dora@example.org', 'UTF8'));
SELECT status, attempts_left FROM linktoken.redeem_code('cd_login', 'dora@example.org', :'code');
SELECT linktoken.unlock_codes('cd_login', 'dora@example.org') AS unlocked,
       linktoken.unlock_codes('cd_login', 'dora@example.org') AS unlocked_again;
SELECT status, subject FROM linktoken.redeem_code('cd_login', 'dora@example.org', :'code');
SELECT event, status, subject FROM linktoken.audit
WHERE purpose = 'cd_login' AND subject = 'dora@example.org' AND event IN ('unlocked', 'redeemed') ORDER BY at, event;
SELECT try($$SELECT linktoken.unlock_codes('cd_login', NULL)$$);
SELECT try($$SELECT linktoken.unlock_codes('nope', 'x')$$);

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
