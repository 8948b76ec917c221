-- purge(): ended tokens older than linktoken.retention go; everything else stays.
SELECT linktoken.define_purpose('pg_one', '1 hour', revoke_previous => false);
SELECT linktoken.issue('pg_one', 'live') AS live \gset
SELECT linktoken.issue('pg_one', 'expired_long_ago') AS e1 \gset
SELECT linktoken.issue('pg_one', 'expired_recently') AS e2 \gset
SELECT linktoken.issue('pg_one', 'used_long_ago') AS u1 \gset
SELECT linktoken.issue('pg_one', 'used_recently') AS u2 \gset
SELECT linktoken.issue('pg_one', 'revoked_long_ago') AS r1 \gset
SELECT linktoken.redeem(:'u1', 'pg_one') IS NOT NULL AS redeemed;
SELECT linktoken.redeem(:'u2', 'pg_one') IS NOT NULL AS redeemed;
SELECT linktoken.revoke(:'r1');
UPDATE linktoken.tokens SET expires_at = now() - interval '8 days' WHERE subject = 'expired_long_ago';
UPDATE linktoken.tokens SET expires_at = now() - interval '1 day' WHERE subject = 'expired_recently';
UPDATE linktoken.tokens SET consumed_at = now() - interval '8 days' WHERE subject = 'used_long_ago';
UPDATE linktoken.tokens SET revoked_at = now() - interval '8 days' WHERE subject = 'revoked_long_ago';

SHOW linktoken.retention;
SELECT linktoken.purge() AS purged;
SELECT subject FROM linktoken.tokens WHERE purpose = 'pg_one' ORDER BY subject;
SELECT event, detail FROM linktoken.events WHERE event = 'purged' ORDER BY id DESC LIMIT 1;
-- Each purged token's issue is now in the audit log, as it happened (until here its row was the
-- record), with the row's time, purpose and subject. The view shows each token's issue once,
-- from the row while it exists and from the event after: 3 purged + 3 left = 6.
SELECT subject, at < now() AS in_the_past FROM linktoken.events
WHERE event = 'issued' AND purpose = 'pg_one' ORDER BY subject;
SELECT count(*) AS issued_rows_in_view FROM linktoken.audit WHERE event = 'issued' AND purpose = 'pg_one';
-- A purged token is simply unknown.
SELECT status FROM linktoken.peek(:'e1', 'pg_one');
SELECT linktoken.purge() AS purged_again;

-- 0.7.0: the use that consumes a token (its last allowed one) is recorded in the token's row, not
-- as an event; the audit view shows it from the row, and purge() writes its 'redeemed' event
-- when it deletes the row. Each use is in the log exactly once, before the purge and after it,
-- with the address and user agent it came from.
SELECT linktoken.define_purpose('pg_two', '1 hour', max_uses => 2, revoke_previous => false);
SELECT linktoken.issue('pg_two', 'twice') AS t2 \gset
SET linktoken.client_ip = '192.0.2.10';
SET linktoken.user_agent = 'mail/1';
SELECT status FROM linktoken.redeem(:'t2', 'pg_two') AS first_use;
SET linktoken.client_ip = '192.0.2.11';
SET linktoken.user_agent = 'mail/2';
SELECT status FROM linktoken.redeem(:'t2', 'pg_two') AS consuming_use;
SELECT status FROM linktoken.redeem(:'t2', 'pg_two') AS after_it;
RESET linktoken.client_ip;
RESET linktoken.user_agent;
SELECT event, status, client_ip, user_agent FROM linktoken.events WHERE purpose = 'pg_two' ORDER BY id;
SELECT consumed_pending_event, consumed_ip, consumed_ua FROM linktoken.tokens WHERE purpose = 'pg_two';
UPDATE linktoken.tokens SET created_at = created_at - interval '9 days', consumed_at = consumed_at - interval '8 days'
WHERE purpose = 'pg_two';
CREATE TEMP TABLE pg_two_before AS SELECT * FROM linktoken.audit WHERE purpose = 'pg_two';
SELECT event, status, client_ip, user_agent FROM pg_two_before ORDER BY at, event;
SELECT linktoken.purge() AS purged_consumed;
SELECT count(*) AS pg_two_rows_left FROM linktoken.tokens WHERE purpose = 'pg_two';
SELECT event, status, client_ip, user_agent FROM linktoken.events WHERE purpose = 'pg_two' ORDER BY id;
-- the same rows, field by field, in the view before and after
SELECT (SELECT count(*) FROM (SELECT * FROM pg_two_before EXCEPT ALL SELECT * FROM linktoken.audit WHERE purpose = 'pg_two') d) AS only_before,
       (SELECT count(*) FROM (SELECT * FROM linktoken.audit WHERE purpose = 'pg_two' EXCEPT ALL SELECT * FROM pg_two_before) d) AS only_after;
DROP TABLE pg_two_before;

-- Shorter retention, in any time unit.
SET linktoken.retention = '12h';
SHOW linktoken.retention;
SELECT linktoken.purge() AS purged_12h;
SELECT subject FROM linktoken.tokens WHERE purpose = 'pg_one' ORDER BY subject;
RESET linktoken.retention;

-- Batches: more rows than one batch.
SELECT count(linktoken.issue('pg_one', 'bulk:' || i)) FROM generate_series(1, 12000) i;
UPDATE linktoken.tokens SET expires_at = now() - interval '30 days' WHERE subject LIKE 'bulk:%' AND subject::text <> 'bulk:12000';
SELECT linktoken.purge() AS purged_bulk;
SELECT count(*) AS bulk_left FROM linktoken.tokens WHERE subject LIKE 'bulk:%';

-- Events older than linktoken.event_retention go (default 400 days; 0 keeps them for ever).
SHOW linktoken.event_retention;
INSERT INTO linktoken.events (at, event, purpose, subject) VALUES
    (now() - interval '401 days', 'rejected', 'pg_one', 'old_event'),
    (now() - interval '2 days', 'rejected', 'pg_one', 'recent_event');
SET linktoken.event_retention = 0;
SELECT linktoken.purge() IS NOT NULL AS purged_keep_all;
SELECT subject FROM linktoken.events WHERE subject IN ('old_event', 'recent_event') ORDER BY subject;
RESET linktoken.event_retention;
SELECT linktoken.purge() IS NOT NULL AS purged_events;
SELECT subject FROM linktoken.events WHERE subject IN ('old_event', 'recent_event') ORDER BY subject;
SELECT detail->'events' AS events_purged FROM linktoken.events WHERE event = 'purged' ORDER BY id DESC LIMIT 1;
-- Outside purge() the log stays append-only, for its owner too.
SELECT try($$DELETE FROM linktoken.events WHERE subject = 'recent_event'$$);

-- Only the owner may purge or change the retention.
CREATE ROLE regress_purger LOGIN IN ROLE linktoken_issuer, linktoken_gateway;
SET ROLE regress_purger;
SELECT try('SELECT linktoken.purge()');
SELECT try($$SET linktoken.retention = '1s'$$);
SELECT try($$SET linktoken.event_retention = '1s'$$);
SELECT try($$SET linktoken.purging_events = on$$);
RESET ROLE;
DROP ROLE regress_purger;
