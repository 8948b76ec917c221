-- linktoken 0.1.0 -> 0.2.0: issue throttling (purpose option min_interval), automatic revocation
-- on state change (trigger function revoke_on_change), sealed stateless tokens (seal, rotate_key,
-- retire_key, tables keys and spent) and the purge worker (no SQL objects). Released scripts
-- are frozen.
--
-- Run ALTER EXTENSION linktoken UPDATE right after installing the 0.2.0 build: until then the
-- 0.1.0 functions run the 0.2.0 library against the 0.1.0 schema and fail with clear errors.

ALTER TABLE @extschema@.purposes
    ADD COLUMN min_interval interval CHECK (min_interval > interval '0'); -- 0.2.0: least time between two tokens of a subject

DROP FUNCTION @extschema@.define_purpose(text, interval, integer, boolean, regprocedure);
CREATE FUNCTION @extschema@."define_purpose"(
	"name" TEXT, /* Option < & str > */
	"ttl" interval, /* Option < Interval > */
	"max_uses" INT DEFAULT 1, /* Option < i32 > */
	"revoke_previous" bool DEFAULT true, /* Option < bool > */
	"action" regprocedure DEFAULT NULL, /* Option < RegProcedure > */
	"min_interval" interval DEFAULT NULL /* Option < Interval > */
) RETURNS void
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'define_purpose_wrapper';

-- Raised by issue() when a purpose's min_interval has not passed since the subject's last token.
-- SQLSTATE 53400 (configuration_limit_exceeded: the purpose's configured limit); DETAIL is the
-- number of seconds to wait. (A custom SQLSTATE would not survive: errors that pass through the
-- extension's Rust code keep only the standard codes.)
CREATE FUNCTION @extschema@.raise_throttled(purpose text, wait_seconds integer) RETURNS void
LANGUAGE plpgsql SET search_path = @extschema@, pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'a token of purpose "%" was issued for this subject recently; wait % seconds', purpose, wait_seconds
        USING ERRCODE = 'configuration_limit_exceeded',
              DETAIL = wait_seconds::text,
              HINT = 'Tell the person the link was just sent. DETAIL holds the seconds to wait before issuing again.';
END
$$;

-- Trigger function: revokes the subject's outstanding tokens of the given purposes when a watched
-- column really changed (not merely appeared in the UPDATE's SET list).
--   CREATE TRIGGER users_revoke_links AFTER UPDATE OF password_hash, email ON app.users
--   FOR EACH ROW EXECUTE FUNCTION linktoken.revoke_on_change('id', 'password_reset', 'magic_login');
-- Arguments: the subject column, then one or more purposes. Without an UPDATE OF list, any
-- change of the row counts.
CREATE FUNCTION @extschema@.revoke_on_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_catalog, pg_temp AS $$
DECLARE
    watched text[];
    changed boolean;
    old_row jsonb;
    new_row jsonb;
    subject text;
    i integer;
BEGIN
    IF TG_OP <> 'UPDATE' OR TG_LEVEL <> 'ROW' THEN
        RAISE EXCEPTION 'linktoken.revoke_on_change() must be an AFTER UPDATE ... FOR EACH ROW trigger'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF TG_NARGS < 2 THEN
        RAISE EXCEPTION 'linktoken.revoke_on_change(subject_column, purpose [, purpose ...]) needs a subject column and at least one purpose'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    old_row := pg_catalog.to_jsonb(OLD);
    new_row := pg_catalog.to_jsonb(NEW);
    IF NOT new_row ? TG_ARGV[0] THEN
        RAISE EXCEPTION 'linktoken.revoke_on_change(): table %.% has no column "%"', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[0]
            USING ERRCODE = 'undefined_column';
    END IF;
    SELECT pg_catalog.array_agg(a.attname::text) INTO watched
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr::int2[])
    WHERE t.tgrelid = TG_RELID AND t.tgname = TG_NAME;
    IF watched IS NULL THEN
        changed := old_row IS DISTINCT FROM new_row;
    ELSE
        SELECT pg_catalog.bool_or(old_row -> c IS DISTINCT FROM new_row -> c) INTO changed
        FROM pg_catalog.unnest(watched) AS c;
    END IF;
    IF changed THEN
        -- The subject the tokens were issued for is the old value (an id rarely changes; if it
        -- does, the old subject's links are the ones to end).
        subject := old_row ->> TG_ARGV[0];
        IF subject IS NOT NULL AND subject <> '' THEN
            FOR i IN 1 .. TG_NARGS - 1 LOOP
                PERFORM @extschema@.revoke_subject(subject, TG_ARGV[i]);
            END LOOP;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- Sealed tokens (0.2.0): the keys that seal and open them, and the list of spent ones.
-- The keys are deliberately NOT registered with pg_extension_config_dump: a dump never contains
-- them (whoever holds a key can forge sealed tokens). After a restore, sealed tokens issued
-- before it no longer open; back the keys up separately if they must survive.
CREATE TABLE @extschema@.keys (
    kid        integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    secret     bytea NOT NULL CHECK (pg_catalog.octet_length(secret) = 32),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    retired_at timestamptz
);
-- Uses and revocations of sealed tokens with a finite use limit, until they expire.
CREATE TABLE @extschema@.spent (
    token_hash bytea PRIMARY KEY CHECK (pg_catalog.octet_length(token_hash) = 32), -- SHA-256 of the token
    purpose    text NOT NULL,
    uses       integer NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.spent', '');

CREATE FUNCTION @extschema@."seal"(
	"purpose" TEXT, /* Option < & str > */
	"subject" TEXT, /* Option < & str > */
	"payload" jsonb DEFAULT '{}', /* Option < RawJsonb > */
	"ttl" interval DEFAULT NULL /* Option < Interval > */
) RETURNS TEXT /* String */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'seal_wrapper';

CREATE FUNCTION @extschema@."rotate_key"() RETURNS INT /* i32 */
STRICT VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'rotate_key_wrapper';

CREATE FUNCTION @extschema@."retire_key"(
	"kid" INT /* Option < i32 > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'retire_key_wrapper';

REVOKE ALL ON FUNCTION
    @extschema@.define_purpose(text, interval, integer, boolean, regprocedure, interval),
    @extschema@.raise_throttled(text, integer),
    @extschema@.revoke_on_change(),
    @extschema@.seal(text, text, jsonb, interval),
    @extschema@.rotate_key(),
    @extschema@.retire_key(integer)
FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.keys, @extschema@.spent FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.keys_kid_seq FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.seal(text, text, jsonb, interval),
    @extschema@.revoke_on_change()
TO linktoken_issuer;

COMMENT ON FUNCTION @extschema@.define_purpose(text, interval, integer, boolean, regprocedure, interval) IS
'Creates or updates a purpose. ttl: lifetime of its tokens; max_uses: uses per token (NULL = unlimited); revoke_previous: issuing revokes the subject''s other outstanding tokens of this purpose; action: a SECURITY DEFINER function (subject text, payload jsonb, form jsonb) RETURNS jsonb with a pinned search_path, run by redeem in the same transaction; min_interval: least time between two tokens for one subject (issue raises 53400 sooner). Owner only.';
COMMENT ON FUNCTION @extschema@.purge() IS
'Deletes tokens that expired, were used up or were revoked longer ago than the setting linktoken.retention (default 7 days), in bounded batches, and spent-list entries of expired sealed tokens; returns how many. Owner only.';
COMMENT ON FUNCTION @extschema@.seal(text, text, jsonb, interval) IS
'Seals a stateless token (prefix lts_): purpose, subject, payload and expiry encrypted and authenticated with XChaCha20-Poly1305 under the current key; nothing is written. peek, redeem, revoke and the gateway accept it like a stored token; redeeming one of a purpose with finite max_uses records it in linktoken.spent (exactly once), unlimited purposes write nothing. Role linktoken_issuer.';
COMMENT ON FUNCTION @extschema@.rotate_key() IS
'Makes a new current key for seal() and returns its id. Older keys still open their tokens until retire_key. Owner only.';
COMMENT ON FUNCTION @extschema@.retire_key(integer) IS
'Retires a sealing key: tokens sealed under it no longer open (status invalid). Returns false if it was already retired or does not exist. Owner only.';
COMMENT ON TABLE @extschema@.keys IS 'Keys that seal and open sealed tokens; readable by no application role and never part of pg_dump';
COMMENT ON TABLE @extschema@.spent IS 'Uses and revocations of sealed tokens with finite use limits, kept until they expire';
COMMENT ON FUNCTION @extschema@.raise_throttled(text, integer) IS
'Internal: raises SQLSTATE 53400 (configuration_limit_exceeded) for issue() when min_interval has not passed; DETAIL holds the seconds to wait.';
COMMENT ON FUNCTION @extschema@.revoke_on_change() IS
'Trigger function: AFTER UPDATE OF <columns> ... FOR EACH ROW EXECUTE FUNCTION linktoken.revoke_on_change(''subject_column'', ''purpose'', ...) revokes the subject''s outstanding tokens of those purposes when a watched column really changed. Role linktoken_issuer (to create such triggers).';
