-- linktoken 0.5.0 -> 0.6.0: the request half of a flow, "enter your email" -> mail (issue 12).
-- * purposes.resolver: the app's SECURITY DEFINER (identifier text, OUT subject text, OUT address
--   text) that maps what a person typed to a subject and a mail address.
-- * linktoken.request(purpose, identifier, bind): issues and enqueues one message in
--   linktoken.outbox for a known identifier, the same void answer for every identifier.
-- * linktoken.outbox (secret part sealed to the mailer's X25519 key), linktoken.mailer_keys and
--   set_mailer_key, linktoken.request_counts (the per-identifier cap), role linktoken_mailer.
-- * gateway_request_page(purpose) for the gateway's GET /request/{purpose}.
-- Nothing existing changes but define_purpose, which gains the argument resolver. Released
-- scripts are frozen.

ALTER TABLE @extschema@.purposes ADD COLUMN resolver regprocedure; -- 0.6.0: (identifier text, OUT subject text, OUT address text), for linktoken.request

-- As in extension/sql/requests.sql of 0.6.0:
-- The mailer's public keys (X25519). Messages are sealed to the newest one not retired;
-- set_mailer_key retires the others, whose messages stay in the outbox, readable by the
-- mailer that still holds their private keys, until they are sent.
CREATE TABLE @extschema@.mailer_keys (
    kid         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_key  bytea NOT NULL UNIQUE CHECK (pg_catalog.octet_length(public_key) = 32),
    fingerprint bytea NOT NULL,          -- first 8 bytes of the public key's SHA-256
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    retired_at  timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mailer_keys', '');

-- One row per message to send. The address is in clear (the mailer needs it); the part that
-- opens the account (link token, typed code) only sealed to the mailer's key: no dump, replica
-- or backup of this table holds a usable token. Readable by linktoken_mailer only, which may
-- also mark rows sent or failed.
CREATE TABLE @extschema@.outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    purpose         text NOT NULL,
    address         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at      timestamptz NOT NULL,  -- the token's expiry, for the mail's text
    one_click       boolean NOT NULL,      -- the purpose's page has "one_click": RFC 8058 headers
    mail_subject    text NOT NULL,         -- the page's mail_subject, else its title, else the purpose
    key_fingerprint bytea NOT NULL,        -- the mailer key the secret part is sealed to
    sealed          bytea NOT NULL,        -- core::mailbox::Secret {token, code}, sealed
    sent_at         timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,                  -- the mailer's last failure (never the message)
    next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX outbox_pending_idx ON @extschema@.outbox (next_attempt_at) WHERE sent_at IS NULL;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.outbox', '');

-- Requests per identifier (what was typed, hashed with the purpose: unknown identifiers are
-- counted too and never stored in clear), within a window of linktoken.request_window.
CREATE TABLE @extschema@.request_counts (
    request_key  bytea PRIMARY KEY,      -- SHA-256 of 'purpose:' || lower(btrim(identifier))
    requests     integer NOT NULL,
    window_until timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.request_counts', '');

DROP FUNCTION @extschema@.define_purpose(text, interval, integer, boolean, regprocedure, interval, integer, integer, boolean);
CREATE FUNCTION @extschema@."define_purpose"(
	"name" TEXT,
	"ttl" interval,
	"max_uses" INT DEFAULT 1,
	"revoke_previous" bool DEFAULT true,
	"action" regprocedure DEFAULT NULL,
	"min_interval" interval DEFAULT NULL,
	"code_digits" INT DEFAULT NULL,
	"max_attempts" INT DEFAULT 5,
	"bind_browser" bool DEFAULT false,
	"resolver" regprocedure DEFAULT NULL
) RETURNS void
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'define_purpose_wrapper';
CREATE FUNCTION @extschema@."gateway_request_page"(
	"purpose" TEXT
) RETURNS jsonb
STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'gateway_request_page_wrapper';
CREATE FUNCTION @extschema@."request"(
	"purpose" TEXT,
	"identifier" TEXT,
	"bind" TEXT DEFAULT NULL
) RETURNS void
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'request_wrapper';
CREATE FUNCTION @extschema@."set_mailer_key"(
	"public_key" bytea
) RETURNS INT
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'set_mailer_key_wrapper';

-- The new role, made as finalize.sql makes the others (an existing role must be a plain
-- NOLOGIN role).
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

REVOKE ALL ON @extschema@.mailer_keys, @extschema@.outbox, @extschema@.request_counts FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.mailer_keys_kid_seq, @extschema@.outbox_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.define_purpose(text, interval, integer, boolean, regprocedure, interval, integer, integer, boolean, regprocedure),
    @extschema@.request(text, text, text), @extschema@.set_mailer_key(bytea),
    @extschema@.gateway_request_page(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO linktoken_mailer;
GRANT SELECT ON @extschema@.outbox TO linktoken_mailer;
GRANT UPDATE (sent_at, attempts, last_error, next_attempt_at) ON @extschema@.outbox TO linktoken_mailer;
GRANT EXECUTE ON FUNCTION @extschema@.request(text, text, text) TO linktoken_issuer, linktoken_gateway;
GRANT EXECUTE ON FUNCTION @extschema@.gateway_request_page(text) TO linktoken_gateway;

COMMENT ON ROLE linktoken_mailer IS 'linktoken: may read linktoken.outbox and mark its messages sent or failed (grant it to the mailer''s login role)';
COMMENT ON FUNCTION @extschema@.define_purpose(text, interval, integer, boolean, regprocedure, interval, integer, integer, boolean, regprocedure) IS
'Creates or updates a purpose. ttl: lifetime of its tokens; max_uses: uses per token (NULL = unlimited); revoke_previous: issuing revokes the subject''s other outstanding tokens of this purpose; action: a SECURITY DEFINER function (subject text, payload jsonb, form jsonb) RETURNS jsonb with a pinned search_path, run by redeem in the same transaction; min_interval: least time between two tokens for one subject (issue raises 53400 sooner); code_digits: 6 to 10 for typed codes (issue_with_code, redeem_code), NULL for none; max_attempts: typed-code attempts per subject within a window of the ttl before its codes (never its links) are locked for the rest of the window; bind_browser: links work only with the bind value of the browser that asked for them (status unbound otherwise; codes still work); resolver: a SECURITY DEFINER function (identifier text, OUT subject text, OUT address text) with a pinned search_path, which maps what a person typed to the subject and mail address, for request(). Owner only.';
COMMENT ON FUNCTION @extschema@.request(text, text, text) IS
'The request form''s half of a flow ("enter your email"): resolves identifier with the purpose''s resolver and, for a known one, issues the purpose''s token (and code; bound to bind for bind_browser purposes) and puts one message into linktoken.outbox, its secret part sealed to the mailer''s key, in this transaction. Returns nothing and raises nothing whatever the identifier: unknown, throttled by min_interval, or over linktoken.requests_per_identifier within linktoken.request_window (counted for unknown identifiers too) all look the same; the audit log has a ''requested'' event (by subject, or by a hash of the identifier). Roles linktoken_issuer, linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.set_mailer_key(bytea) IS
'Sets the mailer''s X25519 public key (32 bytes, from linktoken-gateway mailer keygen): new messages are sealed to it; earlier keys are retired, and their messages stay readable by a mailer that still holds their private keys until sent. Returns the key''s id. Owner only.';
COMMENT ON FUNCTION @extschema@.gateway_request_page(text) IS
'For the gateway''s GET /request/{purpose}: the purpose''s landing page if it has a resolver, else NULL. Role linktoken_gateway.';
COMMENT ON TABLE @extschema@.outbox IS 'Messages for the mailer: address and expiry in clear, the link token and code sealed to the mailer''s public key; readable by linktoken_mailer only';
COMMENT ON TABLE @extschema@.mailer_keys IS 'The mailer''s public keys; messages are sealed to the newest one not retired';
COMMENT ON TABLE @extschema@.request_counts IS 'Requests per purpose and hashed identifier within the current window (linktoken.request_window)';
