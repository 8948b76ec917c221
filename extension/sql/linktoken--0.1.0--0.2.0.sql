-- linktoken 0.1.0 -> 0.2.0: issue throttling (purpose option min_interval), automatic revocation
-- on state change (trigger function revoke_on_change), sealed stateless tokens (seal, rotate_key,
-- retire_key, tables keys and spent), typed codes (issue_with_code, redeem_code, purpose options
-- code_digits and max_attempts, table code_attempts, gateway_code_page), same-browser binding
-- (purpose option bind_browser; a bind argument for issue, issue_with_code, peek, redeem and the
-- gateway functions; status unbound) and the purge worker (no SQL objects). Released scripts are
-- frozen.
--
-- Run ALTER EXTENSION linktoken UPDATE right after installing the 0.2.0 build: until then the
-- 0.1.0 functions run the 0.2.0 library against the 0.1.0 schema and fail with clear errors.

ALTER TABLE @extschema@.purposes
    ADD COLUMN min_interval interval CHECK (min_interval > interval '0'), -- 0.2.0: least time between two tokens of a subject
    ADD COLUMN code_digits integer CHECK (code_digits BETWEEN 6 AND 10), -- 0.2.0: typed codes (NULL: none)
    ADD COLUMN max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0), -- 0.2.0: wrong codes before the lock
    ADD COLUMN bind_browser boolean NOT NULL DEFAULT false; -- 0.2.0: links work only with the issuing browser's bind value
ALTER TABLE @extschema@.tokens
    ADD COLUMN code_hash bytea,   -- 0.2.0: HMAC-SHA-256 of the typed code (keyed, see linktoken.keys)
    ADD COLUMN code_kid integer,  -- 0.2.0: the key that code_hash was made with
    ADD COLUMN bind_hash bytea;   -- 0.2.0: SHA-256 of the browser's bind value (bind_browser purposes)

-- New optional arguments (existing calls keep working): the 0.1.0 signatures go.
DROP FUNCTION @extschema@.define_purpose(text, interval, integer, boolean, regprocedure);
DROP FUNCTION @extschema@.issue(text, text, jsonb, interval);
DROP FUNCTION @extschema@.peek(text, text);
DROP FUNCTION @extschema@.redeem(text, text, jsonb);
DROP FUNCTION @extschema@.gateway_peek(text);
DROP FUNCTION @extschema@.gateway_redeem(text, jsonb);

CREATE FUNCTION @extschema@."define_purpose"(
	"name" TEXT, /* Option < & str > */
	"ttl" interval, /* Option < Interval > */
	"max_uses" INT DEFAULT 1, /* Option < i32 > */
	"revoke_previous" bool DEFAULT true, /* Option < bool > */
	"action" regprocedure DEFAULT NULL, /* Option < RegProcedure > */
	"min_interval" interval DEFAULT NULL, /* Option < Interval > */
	"code_digits" INT DEFAULT NULL, /* Option < i32 > */
	"max_attempts" INT DEFAULT 5, /* Option < i32 > */
	"bind_browser" bool DEFAULT false /* Option < bool > */
) RETURNS void
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'define_purpose_wrapper';

CREATE FUNCTION @extschema@."issue"(
	"purpose" TEXT, /* Option < & str > */
	"subject" TEXT, /* Option < & str > */
	"payload" jsonb DEFAULT '{}', /* Option < RawJsonb > */
	"ttl" interval DEFAULT NULL, /* Option < Interval > */
	"bind" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TEXT /* String */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'issue_wrapper';

CREATE FUNCTION @extschema@."peek"(
	"token" TEXT, /* Option < & str > */
	"purpose" TEXT, /* Option < & str > */
	"bind" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"status" TEXT,  /* String */
	"subject" TEXT,  /* Option < String > */
	"payload" jsonb,  /* Option < RawJsonb > */
	"expires_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"uses_left" INT  /* Option < i32 > */
)
STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'peek_wrapper';

CREATE FUNCTION @extschema@."redeem"(
	"token" TEXT, /* Option < & str > */
	"purpose" TEXT, /* Option < & str > */
	"form" jsonb DEFAULT NULL, /* Option < RawJsonb > */
	"bind" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"status" TEXT,  /* String */
	"subject" TEXT,  /* Option < String > */
	"payload" jsonb,  /* Option < RawJsonb > */
	"result" jsonb  /* Option < RawJsonb > */
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'redeem_wrapper';

CREATE FUNCTION @extschema@."gateway_peek"(
	"token" TEXT, /* Option < & str > */
	"bind" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"status" TEXT,  /* String */
	"purpose" TEXT,  /* Option < String > */
	"page" jsonb,  /* Option < RawJsonb > */
	"uses_left" INT  /* Option < i32 > */
)
STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'gateway_peek_wrapper';

CREATE FUNCTION @extschema@."gateway_redeem"(
	"token" TEXT, /* Option < & str > */
	"form" jsonb DEFAULT NULL, /* Option < RawJsonb > */
	"bind" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"status" TEXT,  /* String */
	"purpose" TEXT,  /* Option < String > */
	"result" jsonb,  /* Option < RawJsonb > */
	"page" jsonb  /* Option < RawJsonb > */
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'gateway_redeem_wrapper';

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

-- Wrong typed codes per subject and purpose, counted across re-issued codes until the window
-- (the purpose's ttl from the first failure) ends; at max_attempts the subject's codes and links
-- of that purpose are locked.
CREATE TABLE @extschema@.code_attempts (
    purpose      text NOT NULL,
    subject      text NOT NULL,
    failures     integer NOT NULL,
    window_until timestamptz NOT NULL,
    PRIMARY KEY (purpose, subject)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.code_attempts', '');

-- Is the subject locked out of typed codes (and their links) for this purpose?
CREATE FUNCTION @extschema@.code_locked(purpose text, subject text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = @extschema@, pg_catalog, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM @extschema@.code_attempts a JOIN @extschema@.purposes p ON p.name = a.purpose
        WHERE a.purpose = $1 AND a.subject = $2
          AND a.window_until > pg_catalog.clock_timestamp() AND a.failures >= p.max_attempts)
$$;

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

CREATE FUNCTION @extschema@."issue_with_code"(
	"purpose" TEXT, /* Option < & str > */
	"subject" TEXT, /* Option < & str > */
	"payload" jsonb DEFAULT '{}', /* Option < RawJsonb > */
	"ttl" interval DEFAULT NULL, /* Option < Interval > */
	"bind" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"token" TEXT,  /* String */
	"code" TEXT  /* String */
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'issue_with_code_wrapper';

CREATE FUNCTION @extschema@."redeem_code"(
	"purpose" TEXT, /* Option < & str > */
	"subject" TEXT, /* Option < & str > */
	"code" TEXT, /* Option < & str > */
	"form" jsonb DEFAULT NULL /* Option < RawJsonb > */
) RETURNS TABLE (
	"status" TEXT,  /* String */
	"subject" TEXT,  /* Option < String > */
	"payload" jsonb,  /* Option < RawJsonb > */
	"result" jsonb,  /* Option < RawJsonb > */
	"attempts_left" INT  /* Option < i32 > */
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'redeem_code_wrapper';

CREATE FUNCTION @extschema@."gateway_code_page"(
	"purpose" TEXT /* Option < & str > */
) RETURNS jsonb /* Option < RawJsonb > */
STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'gateway_code_page_wrapper';

REVOKE ALL ON FUNCTION
    @extschema@.define_purpose(text, interval, integer, boolean, regprocedure, interval, integer, integer, boolean),
    @extschema@.issue(text, text, jsonb, interval, text),
    @extschema@.peek(text, text, text),
    @extschema@.redeem(text, text, jsonb, text),
    @extschema@.gateway_peek(text, text),
    @extschema@.gateway_redeem(text, jsonb, text),
    @extschema@.raise_throttled(text, integer),
    @extschema@.revoke_on_change(),
    @extschema@.seal(text, text, jsonb, interval),
    @extschema@.rotate_key(),
    @extschema@.retire_key(integer),
    @extschema@.issue_with_code(text, text, jsonb, interval, text),
    @extschema@.redeem_code(text, text, text, jsonb),
    @extschema@.code_locked(text, text),
    @extschema@.gateway_code_page(text)
FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.keys, @extschema@.spent, @extschema@.code_attempts FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.keys_kid_seq FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.issue(text, text, jsonb, interval, text),
    @extschema@.peek(text, text, text),
    @extschema@.seal(text, text, jsonb, interval),
    @extschema@.issue_with_code(text, text, jsonb, interval, text),
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

COMMENT ON FUNCTION @extschema@.define_purpose(text, interval, integer, boolean, regprocedure, interval, integer, integer, boolean) IS
'Creates or updates a purpose. ttl: lifetime of its tokens; max_uses: uses per token (NULL = unlimited); revoke_previous: issuing revokes the subject''s other outstanding tokens of this purpose; action: a SECURITY DEFINER function (subject text, payload jsonb, form jsonb) RETURNS jsonb with a pinned search_path, run by redeem in the same transaction; min_interval: least time between two tokens for one subject (issue raises 53400 sooner); code_digits: 6 to 10 for typed codes (issue_with_code, redeem_code), NULL for none; max_attempts: wrong codes per subject before its codes and links are locked for the ttl window; bind_browser: links work only with the bind value of the browser that asked for them (status unbound otherwise; codes still work). Owner only.';
COMMENT ON FUNCTION @extschema@.issue(text, text, jsonb, interval, text) IS
'Issues a token for (purpose, subject) and returns it: the only moment it exists in clear; only its SHA-256 is stored. payload travels with the token to peek/redeem and the action (64 KiB at most); ttl NULL takes the purpose''s. bind: the value of a random cookie set in the browser that asked (required for bind_browser purposes; only its hash is stored). Role linktoken_issuer.';
COMMENT ON FUNCTION @extschema@.peek(text, text, text) IS
'Validates a token for a purpose without consuming it (what a link click does). status: ok, invalid, expired, used, revoked, locked, unbound (a bind_browser token without its browser''s bind value); subject, payload, expires_at and uses_left only when ok (uses_left NULL = unlimited). Roles linktoken_issuer, linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.redeem(text, text, jsonb, text) IS
'Consumes one use of a token and runs the purpose''s action with (subject, payload, form) in the same transaction; result is what the action returned. Exactly once under concurrency (READ COMMITTED). If the action raises, its error reaches the caller and the token is not consumed. Role linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.gateway_peek(text, text) IS
'For the gateway''s GET /t/{token}: like peek, for whatever purpose the token was issued for; returns the status, the purpose, its landing page and uses_left. Changes nothing. Role linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.gateway_redeem(text, jsonb, text) IS
'For the gateway''s POST /t/{token}: checks the form against the purpose''s page (22023 naming the field when it falls short, nothing consumed), then redeems exactly like redeem, running the action. Returns status, purpose, the action''s result and the page. Role linktoken_gateway.';
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
COMMENT ON FUNCTION @extschema@.issue_with_code(text, text, jsonb, interval, text) IS
'Like issue, for a purpose with code_digits: returns the link token and a typed code of random digits for the same token row (the email can carry both). Only a keyed hash of the code is stored (HMAC-SHA-256 under a key in linktoken.keys, which no dump contains). Role linktoken_issuer.';
COMMENT ON FUNCTION @extschema@.redeem_code(text, text, text, jsonb) IS
'Redeems the subject''s outstanding code token with a typed code (spaces and dashes ignored), exactly like redeem. status: ok, wrong_code (attempts_left says how many remain), locked (max_attempts wrong codes within the ttl window; re-issuing does not reset the count; the link is locked too), invalid (no code outstanding). Role linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.code_locked(text, text) IS
'Internal: whether a subject is locked out of typed codes (and their links) for a purpose.';
COMMENT ON TABLE @extschema@.code_attempts IS 'Wrong typed codes per purpose and subject within the current window';
COMMENT ON FUNCTION @extschema@.gateway_code_page(text) IS
'For the gateway''s GET /code/{purpose}: the purpose''s landing page if it has typed codes, else NULL. Role linktoken_gateway.';
