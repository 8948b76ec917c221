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
