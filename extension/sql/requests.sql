-- 0.6.0: "enter your email" -> mail -> link. (Kept in its own file so the upgrade script
-- linktoken--0.5.0--0.6.0.sql can repeat it verbatim.)

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
