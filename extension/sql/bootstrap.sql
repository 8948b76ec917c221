-- linktoken tables. Only hashes of tokens are ever stored.
-- Everything is schema-qualified with @extschema@ so nothing depends on the caller's search_path.

-- 0.4.0: the schema must be the installing superuser's own, and nobody else may create in it.
-- CREATE EXTENSION reuses a schema that already exists; one that another role prepared (CREATE
-- SCHEMA linktoken before the install) would let that role drop, rename and replace objects under
-- the SECURITY DEFINER functions. This block runs before anything is created, in the schema that
-- may be hostile: every name and operator is pg_catalog's, compared as oids.
DO $guard$
DECLARE
    schema_owner pg_catalog.oid;
    installer pg_catalog.oid;
    others text;
BEGIN
    SELECT n.nspowner INTO schema_owner FROM pg_catalog.pg_namespace n
    WHERE n.oid OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace::pg_catalog.oid;
    SELECT r.oid INTO installer FROM pg_catalog.pg_roles r
    WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER;
    IF schema_owner OPERATOR(pg_catalog.<>) installer THEN
        RAISE EXCEPTION 'schema "@extschema@" already exists and is owned by role "%", not by the installing superuser "%"',
            pg_catalog.pg_get_userbyid(schema_owner), CURRENT_USER
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Its owner could drop, rename or replace linktoken''s objects under its SECURITY DEFINER functions.',
                  HINT = 'Drop that schema (or ALTER SCHEMA ... OWNER TO the superuser, after checking what is in it) and run CREATE EXTENSION again.';
    END IF;
    SELECT pg_catalog.string_agg(CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC'
                                      ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END, ', ')
    INTO others
    FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
    WHERE n.oid OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace::pg_catalog.oid
      AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'::text
      AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner;
    IF others IS NOT NULL THEN
        RAISE EXCEPTION 'schema "@extschema@" already exists and grants CREATE to %', others
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'REVOKE CREATE ON SCHEMA @extschema@ FROM those roles (after checking what they put there), then run CREATE EXTENSION again.';
    END IF;
END
$guard$;

CREATE TABLE @extschema@.purposes (
    name            text PRIMARY KEY,
    ttl             interval NOT NULL CHECK (ttl > interval '0'),
    max_uses        integer CHECK (max_uses > 0),          -- NULL: unlimited (unsubscribe links)
    revoke_previous boolean NOT NULL DEFAULT true,
    action          regprocedure,                           -- (subject text, payload jsonb, form jsonb) RETURNS jsonb
    page            jsonb NOT NULL DEFAULT '{}',            -- the gateway's landing page (linktoken.set_page)
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    min_interval    interval CHECK (min_interval > interval '0'), -- 0.2.0: least time between two tokens of a subject
    code_digits     integer CHECK (code_digits BETWEEN 6 AND 10), -- 0.2.0: typed codes (NULL: none)
    max_attempts    integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0), -- 0.2.0: wrong codes before the lock
    bind_browser    boolean NOT NULL DEFAULT false, -- 0.2.0: links work only with the issuing browser's bind value
    resolver        regprocedure -- 0.6.0: (identifier text, OUT subject text, OUT address text), for linktoken.request
);

-- 0.5.0: the one-row results of peek, redeem, redeem_code, gateway_peek, gateway_redeem and
-- issue_with_code (each returns one of these rather than a set of one row, which cost a second
-- call of the function; SELECT * FROM linktoken.redeem(...) expands it the same way).
CREATE TYPE @extschema@.peek_result AS (status text, subject text, payload jsonb, expires_at timestamptz, uses_left integer);
CREATE TYPE @extschema@.redemption AS (status text, subject text, payload jsonb, result jsonb);
CREATE TYPE @extschema@.code_redemption AS (status text, subject text, payload jsonb, result jsonb, attempts_left integer);
CREATE TYPE @extschema@.landing AS (status text, purpose text, page jsonb, uses_left integer);
CREATE TYPE @extschema@.gateway_redemption AS (status text, purpose text, result jsonb, page jsonb);
CREATE TYPE @extschema@.token_and_code AS (token text, code text);

-- 0.5.0: the token's hash is the primary key (no surrogate id, no sequence): issue writes one
-- heap row and two index entries, and a distributed deployment can shard by the hash.
-- No CHECK constraints on this table or on events, which every issue and redemption writes:
-- PostgreSQL reads a table's CHECK expressions anew for every statement that writes it, and
-- for these one-row statements that was the largest single cost (a sixth of issue's CPU).
-- Only linktoken's own functions write these tables (no role is granted anything on them), and
-- they keep what the checks said: a token hash is 32 bytes (SHA-256), max_uses is positive or
-- NULL (checked in purposes), use_count never passes max_uses (the consuming UPDATE's WHERE).
CREATE TABLE @extschema@.tokens (
    token_hash   bytea CONSTRAINT tokens_pkey PRIMARY KEY, -- SHA-256 of the token
    purpose      text NOT NULL,          -- no foreign key: it would lock the purpose row on every issue
    subject      text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at   timestamptz NOT NULL,
    max_uses     integer,                         -- copied from the purpose at issue; NULL: unlimited
    use_count    integer NOT NULL DEFAULT 0,
    last_used_at timestamptz,
    consumed_at  timestamptz,                     -- set when use_count reached max_uses
    revoked_at   timestamptz,
    code_hash    bytea,                           -- 0.2.0: HMAC-SHA-256 of the typed code (keyed, see linktoken.keys)
    code_kid     integer,                         -- 0.2.0: the key that code_hash was made with
    bind_hash    bytea,                           -- 0.2.0: SHA-256 of the browser's bind value (bind_browser purposes)
    -- 0.5.0: the token row is the record of its issue (no 'issued' event is written when it is
    -- made); where the issue came from, when the caller set linktoken.client_ip / user_agent.
    issued_ip    text DEFAULT pg_catalog.left(NULLIF(pg_catalog.current_setting('linktoken.client_ip', true), ''), 64),
    issued_ua    text DEFAULT pg_catalog.left(NULLIF(pg_catalog.current_setting('linktoken.user_agent', true), ''), 512),
    -- 0.7.0: the use that consumed the token (its last allowed use) is recorded in the row, not
    -- as a 'redeemed' event; purge() writes that event when it deletes the row. True when this
    -- row holds that record (false for uses recorded as events, and for tokens consumed before
    -- 0.7.0, whose 'redeemed' event is in linktoken.events already).
    consumed_pending_event boolean NOT NULL DEFAULT false,
    consumed_ip  text,                            -- 0.7.0: linktoken.client_ip of that use
    consumed_ua  text                             -- 0.7.0: linktoken.user_agent of that use
) WITH (fillfactor = 90);                         -- room for HOT updates on redeem
-- Outstanding tokens of a subject (revoke_previous, revoke_subject). No column that redeem
-- changes is indexed, so redeem's UPDATE stays a HOT update.
CREATE INDEX tokens_subject_idx ON @extschema@.tokens (subject, purpose);

-- The audit log. Appends are cheap: one heap row and a BRIN entry (no primary key or btree to
-- maintain on every redemption); `id` orders the rows, `at` finds them by time. An 'issued'
-- event is written for a token when purge() deletes it (until then its row in tokens is the
-- record: see the view linktoken.audit). Events older than linktoken.event_retention are
-- deleted by purge().
CREATE SEQUENCE @extschema@.events_id_seq AS bigint;
CREATE TABLE @extschema@.events (
    id         bigint NOT NULL DEFAULT pg_catalog.nextval('@extschema@.events_id_seq'),
    at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    event      text NOT NULL, -- issued, redeemed, rejected, revoked, purged, unlocked
    status     text,          -- for 'rejected': invalid, expired, used, revoked, ...
    purpose    text,
    subject    text,
    client_ip  text DEFAULT pg_catalog.left(NULLIF(pg_catalog.current_setting('linktoken.client_ip', true), ''), 64),
    user_agent text DEFAULT pg_catalog.left(NULLIF(pg_catalog.current_setting('linktoken.user_agent', true), ''), 512),
    detail     jsonb,
    token_hash bytea          -- 0.5.0: linktoken.tokens.token_hash (SHA-256 of the token); never the token
);
ALTER SEQUENCE @extschema@.events_id_seq OWNED BY @extschema@.events.id;
CREATE INDEX events_at_idx ON @extschema@.events USING brin (at);

-- 0.5.0: the whole audit log in one place: every event, and the issue of every token not yet
-- purged (its row in tokens is the record; purge() writes its 'issued' event when it deletes it).
-- 0.7.0: and the use that consumed it, where the row holds that record (consumed_pending_event).
CREATE VIEW @extschema@.audit AS
SELECT e.at, e.event, e.status, e.purpose, e.subject, e.token_hash, e.client_ip, e.user_agent, e.detail
FROM @extschema@.events e
UNION ALL
SELECT t.created_at, 'issued'::text, NULL::text, t.purpose, t.subject, t.token_hash, t.issued_ip, t.issued_ua, NULL::jsonb
FROM @extschema@.tokens t
UNION ALL
SELECT t.consumed_at, 'redeemed'::text, 'ok'::text, t.purpose, t.subject, t.token_hash, t.consumed_ip, t.consumed_ua, NULL::jsonb
FROM @extschema@.tokens t WHERE t.consumed_pending_event;

CREATE FUNCTION @extschema@.events_append_only() RETURNS trigger
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
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON @extschema@.events
    FOR EACH ROW EXECUTE FUNCTION @extschema@.events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON @extschema@.events
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_append_only();

-- pg_dump must include the data of these tables (they belong to the extension).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.purposes', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tokens', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events_id_seq', '');
