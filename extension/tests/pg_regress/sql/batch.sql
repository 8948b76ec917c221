-- 0.3.0: issue_batch issues one token per subject in one statement, like issue() per subject.
SELECT linktoken.define_purpose('bt_invite', '2 days', max_uses => 1, revoke_previous => false);
CREATE TEMP TABLE bt AS
SELECT row_number() OVER () AS n, subject, token
FROM linktoken.issue_batch('bt_invite', ARRAY['bt:1', 'bt:2', 'bt:3'], '{"wave": 7}', '1 hour');
-- one row per subject, in the order given, each with its own well-formed token
SELECT n, subject, token ~ '^ltk_[A-Za-z0-9_-]{48}$' AS well_formed FROM bt ORDER BY n;
SELECT count(DISTINCT token) AS distinct_tokens FROM bt;
-- each token works for its subject, with the payload and the ttl given, exactly once
SELECT b.subject, p.status, p.subject = b.subject AS own_subject, p.payload,
       p.expires_at BETWEEN now() + interval '59 minutes' AND now() + interval '61 minutes' AS ttl_1_hour
FROM bt b, LATERAL linktoken.peek(b.token, 'bt_invite') p ORDER BY b.n;
SELECT r.status, r.subject FROM bt b, LATERAL linktoken.redeem(b.token, 'bt_invite') r WHERE b.n = 2;
SELECT r.status FROM bt b, LATERAL linktoken.redeem(b.token, 'bt_invite') r WHERE b.n = 2;
-- stored as hashes only; the rows are the record of the issue and of the use that consumed the
-- token (no event until purge: linktoken.events has the rejection only, linktoken.audit all three)
SELECT count(*) AS rows_stored, bool_and(token_hash = sha256(convert_to(b.token, 'UTF8'))) AS hashes_match
FROM linktoken.tokens t JOIN bt b ON t.subject = b.subject WHERE t.purpose = 'bt_invite';
SELECT count(*) AS clear_tokens_stored FROM linktoken.tokens t, bt b
WHERE t.subject = b.token OR t.payload::text LIKE '%' || b.token || '%';
SELECT event, count(*) FROM linktoken.events WHERE purpose = 'bt_invite' GROUP BY event ORDER BY event;
SELECT event, count(*) FROM linktoken.audit WHERE purpose = 'bt_invite' GROUP BY event ORDER BY event;
-- defaults: payload {} and the purpose's ttl; an empty batch issues nothing
SELECT p.payload, p.expires_at > now() + interval '47 hours' AS purpose_ttl
FROM linktoken.issue_batch('bt_invite', ARRAY['bt:4']) b, LATERAL linktoken.peek(b.token, 'bt_invite') p;
SELECT count(*) AS empty_batch FROM linktoken.issue_batch('bt_invite', ARRAY[]::text[]);
-- the same argument checks as issue(), and nothing written when one subject is bad
SELECT try($$SELECT linktoken.issue_batch('bt_invite', NULL)$$);
SELECT try($$SELECT linktoken.issue_batch('bt_invite', ARRAY['bt:5', NULL])$$);
SELECT try($$SELECT linktoken.issue_batch('bt_invite', ARRAY['bt:6', ' '])$$);
SELECT try($$SELECT linktoken.issue_batch('bt_invite', ARRAY['bt:7'], ttl => '-1 hour')$$);
SELECT try($$SELECT linktoken.issue_batch('bt_nope', ARRAY['bt:8'])$$);
SELECT try($$SELECT linktoken.issue_batch(NULL, ARRAY['bt:8'])$$);
SELECT count(*) AS nothing_written FROM linktoken.tokens WHERE subject IN ('bt:5', 'bt:6', 'bt:7', 'bt:8');
-- purposes that revoke previous tokens, throttle or bind to a browser need issue()
SELECT linktoken.define_purpose('bt_reset', '20 minutes');
SELECT linktoken.define_purpose('bt_bound', '20 minutes', revoke_previous => false, bind_browser => true);
SELECT try($$SELECT linktoken.issue_batch('bt_reset', ARRAY['bt:9'])$$);
SELECT try($$SELECT linktoken.issue_batch('bt_bound', ARRAY['bt:9'])$$);
-- privileges: the issuer role may batch-issue, the gateway role and PUBLIC may not
SELECT has_function_privilege('linktoken_issuer', 'linktoken.issue_batch(text, text[], jsonb, interval)', 'EXECUTE') AS issuer,
       has_function_privilege('linktoken_gateway', 'linktoken.issue_batch(text, text[], jsonb, interval)', 'EXECUTE') AS gateway,
       has_function_privilege('public', 'linktoken.issue_batch(text, text[], jsonb, interval)', 'EXECUTE') AS public;
