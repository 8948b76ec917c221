-- Least privilege: nothing for PUBLIC; two NOLOGIN roles get exactly what they need.
-- Roles are cluster-wide, so they are created only when absent and never dropped with the extension.
-- A role of that name that already exists (from another database of the cluster) is reused,
-- but only if it is a plain NOLOGIN role: one someone prepared with LOGIN or extra powers
-- would otherwise inherit the grants below.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['linktoken_issuer', 'linktoken_gateway', 'linktoken_mailer'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r
                      AND (rolcanlogin OR rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls)) THEN
            RAISE EXCEPTION 'role % already exists with LOGIN or other attributes', r
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'linktoken grants its functions to this role; it must be a plain NOLOGIN role. Log in as roles that are members of it instead.';
        END IF;
    END LOOP;
END
$$;
COMMENT ON ROLE linktoken_issuer IS 'linktoken: may issue, peek, revoke and revoke_subject (grant it to the application''s login role)';
COMMENT ON ROLE linktoken_gateway IS 'linktoken: may peek and redeem only (grant it to the gateway''s login role)';
COMMENT ON ROLE linktoken_mailer IS 'linktoken: may read linktoken.outbox and mark its messages sent or failed (grant it to the mailer''s login role)';

REVOKE ALL ON SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;

GRANT USAGE ON SCHEMA @extschema@ TO linktoken_issuer, linktoken_gateway, linktoken_mailer;
GRANT SELECT ON @extschema@.outbox TO linktoken_mailer;
GRANT UPDATE (sent_at, attempts, last_error, next_attempt_at) ON @extschema@.outbox TO linktoken_mailer;
GRANT EXECUTE ON FUNCTION @extschema@.request(text, text, text) TO linktoken_issuer, linktoken_gateway;
GRANT EXECUTE ON FUNCTION @extschema@.gateway_request_page(text) TO linktoken_gateway;
GRANT EXECUTE ON FUNCTION
    @extschema@.issue(text, text, jsonb, interval, text),
    @extschema@.issue_batch(text, text[], jsonb, interval),
    @extschema@.seal(text, text, jsonb, interval),
    @extschema@.issue_with_code(text, text, jsonb, interval, text),
    @extschema@.peek(text, text, text),
    @extschema@.revoke(text),
    @extschema@.revoke_subject(text, text),
    @extschema@.revoke_on_change()
TO linktoken_issuer;
GRANT EXECUTE ON FUNCTION
    @extschema@.peek(text, text, text),
    @extschema@.redeem(text, text, jsonb, text),
    @extschema@.gateway_peek(text, text),
    @extschema@.gateway_redeem(text, jsonb, text),
    @extschema@.redeem_code(text, text, text, jsonb),
    @extschema@.gateway_code_page(text)
TO linktoken_gateway;

-- 0.5.0: purposes are cached in each backend; every statement that writes the table empties
-- the caches (of every backend, when it commits).
CREATE TRIGGER purposes_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.purposes
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.purposes_changed();

COMMENT ON SCHEMA @extschema@ IS 'linktoken: one-time link tokens (see docs/sql-api.md)';
COMMENT ON TABLE @extschema@.purposes IS 'What tokens are for: lifetime, use limit, re-issue policy and the action redeem runs';
COMMENT ON TABLE @extschema@.tokens IS 'Issued tokens, stored only as SHA-256 hashes (the primary key); each row is also the record of its issue, and of the use that consumed it (consumed_pending_event), until purge()';
COMMENT ON TABLE @extschema@.events IS 'Append-only audit log: redeemed, rejected, revoked, unlocked, purged, and issued and the consuming redemption (written by purge() for the tokens it deletes); tokens by hash, never tokens. Read linktoken.audit for the whole log. Older than linktoken.event_retention: deleted by purge()';
COMMENT ON VIEW @extschema@.audit IS 'The whole audit log: linktoken.events, and the issue of every token not yet purged and the redemption that consumed it (from its row in linktoken.tokens). Owner only.';

COMMENT ON FUNCTION @extschema@.define_purpose(text, interval, integer, boolean, regprocedure, interval, integer, integer, boolean, regprocedure) IS
'Creates or updates a purpose. ttl: lifetime of its tokens; max_uses: uses per token (NULL = unlimited); revoke_previous: issuing revokes the subject''s other outstanding tokens of this purpose; action: a SECURITY DEFINER function (subject text, payload jsonb, form jsonb) RETURNS jsonb with a pinned search_path, run by redeem in the same transaction; min_interval: least time between two tokens for one subject (issue raises 53400 sooner); code_digits: 6 to 10 for typed codes (issue_with_code, redeem_code), NULL for none; max_attempts: typed-code attempts per subject within a window of the ttl before its codes (never its links) are locked for the rest of the window; bind_browser: links work only with the bind value of the browser that asked for them (status unbound otherwise; codes still work); resolver: a SECURITY DEFINER function (identifier text, OUT subject text, OUT address text) with a pinned search_path, which maps what a person typed to the subject and mail address, for request(). Owner only.';
COMMENT ON FUNCTION @extschema@.issue(text, text, jsonb, interval, text) IS
'Issues a token for (purpose, subject) and returns it: the only moment it exists in clear; only its SHA-256 is stored. payload travels with the token to peek/redeem and the action (64 KiB at most); ttl NULL takes the purpose''s. bind: the value of a random cookie set in the browser that asked (required for bind_browser purposes; only its hash is stored). Role linktoken_issuer.';
COMMENT ON FUNCTION @extschema@.issue_batch(text, text[], jsonb, interval) IS
'Issues one token per subject for a purpose in one set-based statement and returns (subject, token) in the order given: for large batches (invitations, newsletter unsubscribe links). Same checks and storage (hashes only; the rows are the record of the issue) as issue(); payload and ttl apply to every token. Only for purposes without revoke_previous, min_interval and bind_browser (0A000 otherwise). Role linktoken_issuer.';
COMMENT ON FUNCTION @extschema@.peek(text, text, text) IS
'Validates a token for a purpose without consuming it (what a link click does). status: ok, invalid, expired, used, revoked, locked, unbound (a bind_browser token without its browser''s bind value); subject, payload, expires_at and uses_left only when ok (uses_left NULL = unlimited). Roles linktoken_issuer, linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.redeem(text, text, jsonb, text) IS
'Consumes one use of a token and runs the purpose''s action with (subject, payload, form) in the same transaction; result is what the action returned. Exactly once under concurrency (READ COMMITTED). If the action raises, its error reaches the caller and the token is not consumed. Role linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.revoke(text) IS
'Revokes one outstanding token; true if it was outstanding. Role linktoken_issuer.';
COMMENT ON FUNCTION @extschema@.revoke_subject(text, text) IS
'Revokes every outstanding token of a subject (of one purpose, or of all when purpose is NULL), e.g. after a password change; returns how many. Role linktoken_issuer.';
COMMENT ON FUNCTION @extschema@.purge() IS
'Deletes tokens that expired, were used up or were revoked longer ago than the setting linktoken.retention (default 7 days), in bounded batches, writing each deleted token''s ''issued'' event (and the ''redeemed'' event of the use that consumed it, where its row held that record) to linktoken.events; then spent-list entries of expired sealed tokens, idle typed-code counters, and events older than linktoken.event_retention (default 400 days; 0 keeps them). Returns how many tokens and spent-list entries it deleted. Owner only.';
COMMENT ON FUNCTION @extschema@.set_page(text, jsonb) IS
'Sets the landing page the gateway shows for a purpose''s links: {"title", "text", "button", "fields": [{"name", "type" (text, email, password, number, textarea, checkbox, radio, select), "label", "required", "minlength", "options": [{"value", "label"}], "same_as"}], "success_url" (a same-origin path), "success_title", "success_text", "one_click" (RFC 8058), "confirm_label"}. A page without a required field gets a required confirmation checkbox. Owner only.';
COMMENT ON FUNCTION @extschema@.gateway_peek(text, text) IS
'For the gateway''s GET /t/{token}: like peek, for whatever purpose the token was issued for; returns the status, the purpose, its landing page and uses_left. Changes nothing. Role linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.gateway_redeem(text, jsonb, text) IS
'For the gateway''s POST /t/{token}: checks the form against the purpose''s page (22023 naming the field when it falls short, nothing consumed), then redeems exactly like redeem, running the action. Returns status, purpose, the action''s result and the page. Role linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.raise_throttled(text, integer) IS
'Internal: raises SQLSTATE 53400 (configuration_limit_exceeded) for issue() when min_interval has not passed; DETAIL holds the seconds to wait.';
COMMENT ON FUNCTION @extschema@.revoke_on_change() IS
'Trigger function (SECURITY INVOKER): AFTER UPDATE OF <columns> ... FOR EACH ROW EXECUTE FUNCTION linktoken.revoke_on_change(''subject_column'', ''purpose'', ...) revokes the subject''s outstanding tokens of those purposes (through revoke_subject) when a watched column really changed. Role linktoken_issuer: to create such triggers, and for every role that updates a watched table.';
COMMENT ON FUNCTION @extschema@.seal(text, text, jsonb, interval) IS
'Seals a stateless token (prefix lts_): purpose, subject, payload and expiry encrypted and authenticated with XChaCha20-Poly1305 under the current key; nothing is written. peek, redeem, revoke and the gateway accept it like a stored token; redeeming one of a purpose with finite max_uses records it in linktoken.spent (exactly once), unlimited purposes write nothing. Refuses (22023) purposes with revoke_previous, min_interval, bind_browser or code_digits, which need the issue on record. Role linktoken_issuer.';
COMMENT ON FUNCTION @extschema@.rotate_key() IS
'Makes a new current key for seal() and returns its id. Older keys still open their tokens until retire_key. Owner only.';
COMMENT ON FUNCTION @extschema@.retire_key(integer) IS
'Retires a sealing key: tokens sealed under it no longer open (status invalid). Returns false if it was already retired or does not exist. Owner only.';
COMMENT ON TABLE @extschema@.keys IS 'Keys that seal and open sealed tokens; readable by no application role and never part of pg_dump';
COMMENT ON TABLE @extschema@.spent IS 'Uses and revocations of sealed tokens with finite use limits, kept until they expire';
COMMENT ON FUNCTION @extschema@.issue_with_code(text, text, jsonb, interval, text) IS
'Like issue, for a purpose with code_digits: returns the link token and a typed code of random digits for the same token row (the email can carry both). Only a keyed hash of the code is stored (HMAC-SHA-256 under a key in linktoken.keys, which no dump contains). Role linktoken_issuer.';
COMMENT ON FUNCTION @extschema@.redeem_code(text, text, text, jsonb) IS
'Redeems the subject''s outstanding code token with a typed code (spaces and dashes ignored), exactly like redeem. Every attempt is counted in a transaction of its own before anything is answered, so no ROLLBACK undoes it (53000 if it cannot be counted; nothing is checked then). status: ok, wrong_code, invalid (no code outstanding for the subject), locked (max_attempts attempts within the ttl window, or 100 in a row since the last successful redemption; re-issuing does not reset the count; links are never locked); attempts_left for wrong_code and invalid. Must not run under REPEATABLE READ. Role linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.gateway_code_page(text) IS
'For the gateway''s GET /code/{purpose}: the purpose''s landing page if it has typed codes, else NULL. Role linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.unlock_codes(text, text) IS
'Ends a subject''s lock-out from typed codes of a purpose (deletes its attempt counter, records an ''unlocked'' event); true if there was one. For support staff after checking who asks. Owner only.';
COMMENT ON TABLE @extschema@.code_attempts IS 'Typed-code attempts per purpose and hashed subject (SHA-256 of purpose:subject), counted outside the caller''s transaction';
COMMENT ON FUNCTION @extschema@.events_append_only() IS
'Trigger function keeping linktoken.events append-only.';
COMMENT ON FUNCTION @extschema@.purposes_changed() IS
'Internal trigger function on linktoken.purposes: empties every backend''s cache of purposes after a write.';
COMMENT ON FUNCTION @extschema@.request(text, text, text) IS
'The request form''s half of a flow ("enter your email"): resolves identifier with the purpose''s resolver and, for a known one, issues the purpose''s token (and code; bound to bind for bind_browser purposes) and puts one message into linktoken.outbox, its secret part sealed to the mailer''s key, in this transaction. Returns nothing and raises nothing whatever the identifier: unknown, throttled by min_interval, or over linktoken.requests_per_identifier within linktoken.request_window (counted for unknown identifiers too) all look the same; the audit log has a ''requested'' event (by subject, or by a hash of the identifier). Roles linktoken_issuer, linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.set_mailer_key(bytea) IS
'Sets the mailer''s X25519 public key (32 bytes, from linktoken-gateway mailer keygen): new messages are sealed to it; earlier keys are retired, and their messages stay readable by a mailer that still holds their private keys until sent. Returns the key''s id. Owner only.';
COMMENT ON FUNCTION @extschema@.gateway_request_page(text) IS
'For the gateway''s GET /request/{purpose}: the purpose''s landing page if it has a resolver, else NULL. Role linktoken_gateway.';
COMMENT ON TABLE @extschema@.outbox IS 'Messages for the mailer: address and expiry in clear, the link token and code sealed to the mailer''s public key; readable by linktoken_mailer only';
COMMENT ON TABLE @extschema@.mailer_keys IS 'The mailer''s public keys; messages are sealed to the newest one not retired';
COMMENT ON TABLE @extschema@.request_counts IS 'Requests per purpose and hashed identifier within the current window (linktoken.request_window)';
