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

-- Only the owner may purge or change the retention.
CREATE ROLE regress_purger LOGIN IN ROLE linktoken_issuer, linktoken_gateway;
SET ROLE regress_purger;
SELECT try('SELECT linktoken.purge()');
SELECT try($$SET linktoken.retention = '1s'$$);
RESET ROLE;
DROP ROLE regress_purger;
