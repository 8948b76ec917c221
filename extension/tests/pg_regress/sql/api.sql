-- The happy path: define a purpose, issue, peek, redeem, redeem again.
SELECT linktoken.define_purpose('verify_email', '1 day');
SELECT name, ttl, max_uses, revoke_previous, action FROM linktoken.purposes WHERE name = 'verify_email';

SELECT linktoken.issue('verify_email', 'anna@example.org', '{"list": 7}') AS tok \gset
-- 256-bit token: 4-character prefix + 48 base64url characters, URL-safe.
SELECT length(:'tok') AS len, :'tok' ~ '^ltk_[A-Za-z0-9_-]{48}$' AS url_safe;

SELECT status, subject, payload, expires_at > now() + interval '23 hours' AS expires_in_a_day, uses_left
FROM linktoken.peek(:'tok', 'verify_email');
-- peek never consumes
SELECT status FROM linktoken.peek(:'tok', 'verify_email');
SELECT use_count, consumed_at IS NULL AS unconsumed FROM linktoken.tokens WHERE subject = 'anna@example.org';

SELECT * FROM linktoken.redeem(:'tok', 'verify_email');
SELECT * FROM linktoken.redeem(:'tok', 'verify_email');
SELECT status, subject, payload, expires_at, uses_left FROM linktoken.peek(:'tok', 'verify_email');

-- Only the SHA-256 of the token is stored.
SELECT count(*) AS rows_with_hash
FROM linktoken.tokens WHERE token_hash = sha256(convert_to(:'tok', 'UTF8'));
SELECT count(*) AS rows_containing_token
FROM linktoken.tokens t WHERE t::text LIKE '%' || substr(:'tok', 5, 20) || '%';

-- The audit log names the token by its hash, never by value; the issue is the token's row
-- until purge() writes its 'issued' event (linktoken.audit shows both).
SELECT event, status, purpose, subject, token_hash = sha256(convert_to(:'tok', 'UTF8')) AS names_the_token
FROM linktoken.audit WHERE subject = 'anna@example.org' ORDER BY at;
SELECT count(*) AS issued_events_before_purge FROM linktoken.events WHERE event = 'issued' AND subject = 'anna@example.org';
SELECT count(*) AS events_containing_token
FROM linktoken.events e WHERE e::text LIKE '%' || substr(:'tok', 5, 20) || '%';

-- Client context from the settings the gateway sets per transaction.
BEGIN;
SELECT set_config('linktoken.client_ip', '203.0.113.9', true),
       set_config('linktoken.user_agent', 'Mozilla/5.0 (regress)', true);
SELECT status FROM linktoken.redeem(:'tok', 'verify_email');
COMMIT;
SELECT event, status, client_ip, user_agent FROM linktoken.events ORDER BY id DESC LIMIT 1;

-- Unlimited uses (unsubscribe links): uses_left is NULL and every redeem is ok.
SELECT linktoken.define_purpose('unsubscribe', '1 year', max_uses => NULL, revoke_previous => false);
SELECT linktoken.issue('unsubscribe', 'list:7:anna') AS unsub \gset
SELECT status, uses_left FROM linktoken.peek(:'unsub', 'unsubscribe');
SELECT status FROM linktoken.redeem(:'unsub', 'unsubscribe');
SELECT status FROM linktoken.redeem(:'unsub', 'unsubscribe');
SELECT status, uses_left FROM linktoken.peek(:'unsub', 'unsubscribe');

-- A limited number of uses: three.
SELECT linktoken.define_purpose('survey', '7 days', max_uses => 3);
SELECT linktoken.issue('survey', 'patient:1') AS survey \gset
SELECT status, uses_left FROM linktoken.peek(:'survey', 'survey');
SELECT status FROM linktoken.redeem(:'survey', 'survey');
SELECT status, uses_left FROM linktoken.peek(:'survey', 'survey');
SELECT status FROM linktoken.redeem(:'survey', 'survey');
SELECT status FROM linktoken.redeem(:'survey', 'survey');
SELECT status FROM linktoken.redeem(:'survey', 'survey');
SELECT use_count, max_uses, consumed_at IS NOT NULL AS used_up FROM linktoken.tokens WHERE subject = 'patient:1';

-- Per-token TTL overrides the purpose's.
SELECT linktoken.issue('verify_email', 'ben@example.org', ttl => '10 minutes') AS short \gset
SELECT expires_at < now() + interval '11 minutes' AS short_lived FROM linktoken.peek(:'short', 'verify_email');

-- define_purpose updates in place.
SELECT linktoken.define_purpose('survey', '14 days', max_uses => 5);
SELECT name, ttl, max_uses FROM linktoken.purposes WHERE name = 'survey';
-- tokens already issued keep the use limit they were issued with
SELECT max_uses FROM linktoken.tokens WHERE subject = 'patient:1';

-- Smaller tokens (128 bits) when an operator asks for them; never fewer.
SET linktoken.token_bytes = 16;
SELECT length(linktoken.issue('verify_email', 'carl@example.org')) AS len_128;
SELECT try('SET linktoken.token_bytes = 8');
RESET linktoken.token_bytes;
-- typos in linktoken.* settings are errors, not silently new settings
SELECT try('SET linktoken.tll = 5');

-- The session's plan_cache_mode stays the session's: linktoken's statements neither change nor
-- need it (their kept plans carry their own generic-plan option), under either forced mode.
SET plan_cache_mode = force_custom_plan;
SELECT linktoken.issue('verify_email', 'dora@example.org') AS dora \gset
SELECT status FROM linktoken.peek(:'dora', 'verify_email');
SELECT status FROM linktoken.redeem(:'dora', 'verify_email');
SHOW plan_cache_mode;
SET plan_cache_mode = force_generic_plan;
SELECT status FROM linktoken.redeem(:'dora', 'verify_email');
SHOW plan_cache_mode;
RESET plan_cache_mode;

-- Every function has a comment.
SELECT p.oid::regprocedure AS function, obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'linktoken' ORDER BY p.oid::regprocedure::text;
