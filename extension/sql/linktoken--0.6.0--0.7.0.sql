-- linktoken 0.6.0 -> 0.7.0: the use that consumes a stored token (its last allowed use; the only
-- one of a one-use token) is recorded in the token's row instead of as a 'redeemed' event, as
-- 0.5.0 did for the issue: purge() writes the event when it deletes the row, and the view
-- linktoken.audit shows it until then (issue 11: one heap update per redemption instead of an
-- update, an event insert and a sequence step). Uses that leave the token usable, redemptions
-- of sealed tokens and rejections are events as before.
-- Tokens consumed before this upgrade have their 'redeemed' event in linktoken.events already:
-- consumed_pending_event is false for them (the default), so nothing is recorded twice.

ALTER TABLE @extschema@.tokens
    ADD COLUMN consumed_pending_event boolean NOT NULL DEFAULT false,
    ADD COLUMN consumed_ip text,
    ADD COLUMN consumed_ua text;

CREATE OR REPLACE VIEW @extschema@.audit AS
SELECT e.at, e.event, e.status, e.purpose, e.subject, e.token_hash, e.client_ip, e.user_agent, e.detail
FROM @extschema@.events e
UNION ALL
SELECT t.created_at, 'issued'::text, NULL::text, t.purpose, t.subject, t.token_hash, t.issued_ip, t.issued_ua, NULL::jsonb
FROM @extschema@.tokens t
UNION ALL
SELECT t.consumed_at, 'redeemed'::text, 'ok'::text, t.purpose, t.subject, t.token_hash, t.consumed_ip, t.consumed_ua, NULL::jsonb
FROM @extschema@.tokens t WHERE t.consumed_pending_event;

COMMENT ON TABLE @extschema@.tokens IS 'Issued tokens, stored only as SHA-256 hashes (the primary key); each row is also the record of its issue, and of the use that consumed it (consumed_pending_event), until purge()';
COMMENT ON TABLE @extschema@.events IS 'Append-only audit log: redeemed, rejected, revoked, unlocked, purged, and issued and the consuming redemption (written by purge() for the tokens it deletes); tokens by hash, never tokens. Read linktoken.audit for the whole log. Older than linktoken.event_retention: deleted by purge()';
COMMENT ON VIEW @extschema@.audit IS 'The whole audit log: linktoken.events, and the issue of every token not yet purged and the redemption that consumed it (from its row in linktoken.tokens). Owner only.';
COMMENT ON FUNCTION @extschema@.purge() IS
'Deletes tokens that expired, were used up or were revoked longer ago than the setting linktoken.retention (default 7 days), in bounded batches, writing each deleted token''s ''issued'' event (and the ''redeemed'' event of the use that consumed it, where its row held that record) to linktoken.events; then spent-list entries of expired sealed tokens, idle typed-code counters, and events older than linktoken.event_retention (default 400 days; 0 keeps them). Returns how many tokens and spent-list entries it deleted. Owner only.';
