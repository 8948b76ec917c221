-- linktoken 0.4.0 -> 0.5.0: as fast as the table a DBA would write by hand (issue 11).
-- * tokens: the hash is the primary key; no surrogate id or sequence. Each row is the record
--   of its issue (with where it came from: issued_ip, issued_ua); issue writes no event.
-- * events: tokens by hash (token_hash) instead of id; no primary key or btree to maintain on
--   every append, a BRIN index on at; 'issued' events are written by purge() for the tokens it
--   deletes; events older than linktoken.event_retention are deleted by purge().
-- * the view audit: every event and the issue of every token not yet purged.
-- * no CHECK constraints on tokens and events (PostgreSQL reads them anew for every statement).
-- * purposes are cached per backend; a statement trigger on purposes empties the caches.
-- * peek, redeem, redeem_code, gateway_peek, gateway_redeem and issue_with_code return one
--   composite row instead of a set of one row (SELECT * FROM ... expands it the same way).
-- Moves existing tokens and events without loss: an event's token id becomes the token's hash
-- (kept in detail as token_id where the token is already purged); the issue events of tokens
-- still stored become those rows' record (their client address and user agent move into the
-- row). Released scripts are frozen.

CREATE TYPE @extschema@.peek_result AS (status text, subject text, payload jsonb, expires_at timestamptz, uses_left integer);
CREATE TYPE @extschema@.redemption AS (status text, subject text, payload jsonb, result jsonb);
CREATE TYPE @extschema@.code_redemption AS (status text, subject text, payload jsonb, result jsonb, attempts_left integer);
CREATE TYPE @extschema@.landing AS (status text, purpose text, page jsonb, uses_left integer);
CREATE TYPE @extschema@.gateway_redemption AS (status text, purpose text, result jsonb, page jsonb);
CREATE TYPE @extschema@.token_and_code AS (token text, code text);

-- Tokens by hash, and the events that named them by id.
ALTER TABLE @extschema@.tokens
    ADD COLUMN issued_ip text DEFAULT pg_catalog.left(NULLIF(pg_catalog.current_setting('linktoken.client_ip', true), ''), 64),
    ADD COLUMN issued_ua text DEFAULT pg_catalog.left(NULLIF(pg_catalog.current_setting('linktoken.user_agent', true), ''), 512);
ALTER TABLE @extschema@.events DISABLE TRIGGER events_append_only;
UPDATE @extschema@.tokens t SET issued_ip = e.client_ip, issued_ua = e.user_agent
FROM @extschema@.events e WHERE e.event = 'issued' AND e.token_id = t.id;
DELETE FROM @extschema@.events e USING @extschema@.tokens t WHERE e.event = 'issued' AND e.token_id = t.id;
ALTER TABLE @extschema@.events ADD COLUMN token_hash bytea;
UPDATE @extschema@.events e SET token_hash = t.token_hash FROM @extschema@.tokens t WHERE t.id = e.token_id;
UPDATE @extschema@.events
SET detail = COALESCE(detail, '{}'::pg_catalog.jsonb) || pg_catalog.jsonb_build_object('token_id', token_id)
WHERE token_id IS NOT NULL AND token_hash IS NULL;
ALTER TABLE @extschema@.events DROP COLUMN token_id;
ALTER TABLE @extschema@.events ENABLE TRIGGER events_append_only;
ALTER TABLE @extschema@.events DROP CONSTRAINT events_pkey;
ALTER TABLE @extschema@.events ALTER COLUMN id SET NOT NULL;
CREATE INDEX events_at_idx ON @extschema@.events USING brin (at);
ALTER TABLE @extschema@.tokens DROP CONSTRAINT tokens_pkey;
ALTER TABLE @extschema@.tokens DROP CONSTRAINT tokens_token_hash_key;
ALTER TABLE @extschema@.tokens DROP COLUMN id;   -- drops tokens_id_seq, which it owned
ALTER TABLE @extschema@.tokens ADD CONSTRAINT tokens_pkey PRIMARY KEY (token_hash);
-- No CHECK constraints on the two tables every issue and redemption writes (see bootstrap.sql).
ALTER TABLE @extschema@.tokens DROP CONSTRAINT tokens_token_hash_check,
    DROP CONSTRAINT tokens_max_uses_check, DROP CONSTRAINT tokens_check;
ALTER TABLE @extschema@.events DROP CONSTRAINT events_event_check;
-- The dropped sequence was one of the extension's configuration tables (pg_dump includes their
-- data); remove it from that list, as ALTER EXTENSION ... DROP would (not allowed in a script).
UPDATE pg_catalog.pg_extension e SET extconfig = k.cfg, extcondition = k.cond
FROM (SELECT pg_catalog.array_agg(u.c ORDER BY u.i) AS cfg, pg_catalog.array_agg(u.cond ORDER BY u.i) AS cond
      FROM pg_catalog.pg_extension x,
           ROWS FROM (pg_catalog.unnest(x.extconfig), pg_catalog.unnest(x.extcondition)) WITH ORDINALITY AS u(c, cond, i)
      WHERE x.extname = 'linktoken'
        AND EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid = u.c)) k
WHERE e.extname = 'linktoken';

CREATE OR REPLACE FUNCTION @extschema@.events_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, @extschema@, pg_temp AS $$
BEGIN
    -- 0.5.0: purge() deletes events older than linktoken.event_retention, and says so with a
    -- setting of its own transaction (only the table's owner may delete rows at all).
    IF TG_OP = 'DELETE' AND pg_catalog.current_setting('linktoken.purging_events', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'linktoken.events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit rows are never changed; purge() deletes those older than linktoken.event_retention. To archive events otherwise, a superuser may disable the trigger events_append_only inside a maintenance transaction.';
END
$$;

CREATE VIEW @extschema@.audit AS
SELECT e.at, e.event, e.status, e.purpose, e.subject, e.token_hash, e.client_ip, e.user_agent, e.detail
FROM @extschema@.events e
UNION ALL
SELECT t.created_at, 'issued'::text, NULL::text, t.purpose, t.subject, t.token_hash, t.issued_ip, t.issued_ua, NULL::jsonb
FROM @extschema@.tokens t;
REVOKE ALL ON @extschema@.audit FROM PUBLIC;

-- One composite row instead of a set of one row: a new result type means a new function.
DROP FUNCTION @extschema@.peek(text, text, text);
DROP FUNCTION @extschema@.redeem(text, text, jsonb, text);
DROP FUNCTION @extschema@.redeem_code(text, text, text, jsonb);
DROP FUNCTION @extschema@.gateway_peek(text, text);
DROP FUNCTION @extschema@.gateway_redeem(text, jsonb, text);
DROP FUNCTION @extschema@.issue_with_code(text, text, jsonb, interval, text);
CREATE FUNCTION @extschema@."peek"(
	"token" TEXT, /* Option < & str > */
	"purpose" TEXT, /* Option < & str > */
	"bind" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS @extschema@.peek_result /* PeekRow */
STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'peek_wrapper';
REVOKE ALL ON FUNCTION @extschema@.peek(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.peek(text, text, text) TO linktoken_issuer, linktoken_gateway;
COMMENT ON FUNCTION @extschema@.peek(text, text, text) IS
'Validates a token for a purpose without consuming it (what a link click does). status: ok, invalid, expired, used, revoked, locked, unbound (a bind_browser token without its browser''s bind value); subject, payload, expires_at and uses_left only when ok (uses_left NULL = unlimited). Roles linktoken_issuer, linktoken_gateway.';

CREATE FUNCTION @extschema@."redeem"(
	"token" TEXT, /* Option < & str > */
	"purpose" TEXT, /* Option < & str > */
	"form" jsonb DEFAULT NULL, /* Option < RawJsonb > */
	"bind" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS @extschema@.redemption /* RedeemRow */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'redeem_wrapper';
REVOKE ALL ON FUNCTION @extschema@.redeem(text, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.redeem(text, text, jsonb, text) TO linktoken_gateway;
COMMENT ON FUNCTION @extschema@.redeem(text, text, jsonb, text) IS
'Consumes one use of a token and runs the purpose''s action with (subject, payload, form) in the same transaction; result is what the action returned. Exactly once under concurrency (READ COMMITTED). If the action raises, its error reaches the caller and the token is not consumed. Role linktoken_gateway.';

CREATE FUNCTION @extschema@."redeem_code"(
	"purpose" TEXT, /* Option < & str > */
	"subject" TEXT, /* Option < & str > */
	"code" TEXT, /* Option < & str > */
	"form" jsonb DEFAULT NULL /* Option < RawJsonb > */
) RETURNS @extschema@.code_redemption /* CodeRedeemRow */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'redeem_code_wrapper';
REVOKE ALL ON FUNCTION @extschema@.redeem_code(text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.redeem_code(text, text, text, jsonb) TO linktoken_gateway;
COMMENT ON FUNCTION @extschema@.redeem_code(text, text, text, jsonb) IS
'Redeems the subject''s outstanding code token with a typed code (spaces and dashes ignored), exactly like redeem. Every attempt is counted in a transaction of its own before anything is answered, so no ROLLBACK undoes it (53000 if it cannot be counted; nothing is checked then). status: ok, wrong_code, invalid (no code outstanding for the subject), locked (max_attempts attempts within the ttl window, or 100 in a row since the last successful redemption; re-issuing does not reset the count; links are never locked); attempts_left for wrong_code and invalid. Must not run under REPEATABLE READ. Role linktoken_gateway.';

CREATE FUNCTION @extschema@."gateway_peek"(
	"token" TEXT, /* Option < & str > */
	"bind" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS @extschema@.landing /* LandingRow */
STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'gateway_peek_wrapper';
REVOKE ALL ON FUNCTION @extschema@.gateway_peek(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gateway_peek(text, text) TO linktoken_gateway;
COMMENT ON FUNCTION @extschema@.gateway_peek(text, text) IS
'For the gateway''s GET /t/{token}: like peek, for whatever purpose the token was issued for; returns the status, the purpose, its landing page and uses_left. Changes nothing. Role linktoken_gateway.';

CREATE FUNCTION @extschema@."gateway_redeem"(
	"token" TEXT, /* Option < & str > */
	"form" jsonb DEFAULT NULL, /* Option < RawJsonb > */
	"bind" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS @extschema@.gateway_redemption /* GatewayRedeemRow */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'gateway_redeem_wrapper';
REVOKE ALL ON FUNCTION @extschema@.gateway_redeem(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gateway_redeem(text, jsonb, text) TO linktoken_gateway;
COMMENT ON FUNCTION @extschema@.gateway_redeem(text, jsonb, text) IS
'For the gateway''s POST /t/{token}: checks the form against the purpose''s page (22023 naming the field when it falls short, nothing consumed), then redeems exactly like redeem, running the action. Returns status, purpose, the action''s result and the page. Role linktoken_gateway.';

CREATE FUNCTION @extschema@."issue_with_code"(
	"purpose" TEXT, /* Option < & str > */
	"subject" TEXT, /* Option < & str > */
	"payload" jsonb DEFAULT '{}', /* Option < RawJsonb > */
	"ttl" interval DEFAULT NULL, /* Option < Interval > */
	"bind" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS @extschema@.token_and_code /* TokenAndCodeRow */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'issue_with_code_wrapper';
REVOKE ALL ON FUNCTION @extschema@.issue_with_code(text, text, jsonb, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.issue_with_code(text, text, jsonb, interval, text) TO linktoken_issuer;
COMMENT ON FUNCTION @extschema@.issue_with_code(text, text, jsonb, interval, text) IS
'Like issue, for a purpose with code_digits: returns the link token and a typed code of random digits for the same token row (the email can carry both). Only a keyed hash of the code is stored (HMAC-SHA-256 under a key in linktoken.keys, which no dump contains). Role linktoken_issuer.';

COMMENT ON TABLE @extschema@.tokens IS 'Issued tokens, stored only as SHA-256 hashes (the primary key); each row is also the record of its issue until purge()';
COMMENT ON TABLE @extschema@.events IS 'Append-only audit log: redeemed, rejected, revoked, unlocked, purged, and issued (written by purge() for the tokens it deletes); tokens by hash, never tokens. Older than linktoken.event_retention: deleted by purge()';
COMMENT ON VIEW @extschema@.audit IS 'The whole audit log: linktoken.events and the issue of every token not yet purged (from its row in linktoken.tokens). Owner only.';
COMMENT ON FUNCTION @extschema@.issue_batch(text, text[], jsonb, interval) IS
'Issues one token per subject for a purpose in one set-based statement and returns (subject, token) in the order given: for large batches (invitations, newsletter unsubscribe links). Same checks and storage (hashes only; the rows are the record of the issue) as issue(); payload and ttl apply to every token. Only for purposes without revoke_previous, min_interval and bind_browser (0A000 otherwise). Role linktoken_issuer.';
COMMENT ON FUNCTION @extschema@.purge() IS
'Deletes tokens that expired, were used up or were revoked longer ago than the setting linktoken.retention (default 7 days), in bounded batches, writing each deleted token''s ''issued'' event to linktoken.events; then spent-list entries of expired sealed tokens, idle typed-code counters, and events older than linktoken.event_retention (default 400 days; 0 keeps them). Returns how many tokens and spent-list entries it deleted. Owner only.';

-- Purposes are cached per backend: every statement that writes the table empties the caches.
CREATE FUNCTION @extschema@."purposes_changed"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'purposes_changed_wrapper';
REVOKE ALL ON FUNCTION @extschema@.purposes_changed() FROM PUBLIC;
CREATE TRIGGER purposes_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.purposes
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.purposes_changed();
COMMENT ON FUNCTION @extschema@.purposes_changed() IS
'Internal trigger function on linktoken.purposes: empties every backend''s cache of purposes after a write.';
