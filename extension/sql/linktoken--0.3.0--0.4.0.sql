-- linktoken 0.3.0 -> 0.4.0: least privilege that holds under attack (issue 9).
-- * the schema must be a superuser's, and nobody else may CREATE in it (checked first);
-- * every function's search_path puts pg_catalog first: nothing in linktoken's own schema can
--   shadow a built-in function or operator;
-- * revoke_on_change() becomes SECURITY INVOKER (it evaluated the table owner's types as the
--   extension owner);
-- * typed-code attempts are counted outside the caller's transaction, per hashed subject, with a
--   consecutive cap across windows; links are never locked by wrong codes: code_locked() goes,
--   code_attempts is keyed by SHA-256 of 'purpose:subject'; unlock_codes(purpose, subject);
-- * events may record 'unlocked'.
-- (seal() refusing purposes it cannot honour and the action search_path check are in the
-- library.) Released scripts are frozen.
DO $guard$
DECLARE
    schema_owner pg_catalog.oid;
    others text;
BEGIN
    SELECT n.nspowner INTO schema_owner FROM pg_catalog.pg_namespace n
    WHERE n.oid OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace::pg_catalog.oid;
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) schema_owner) THEN
        RAISE EXCEPTION 'schema "@extschema@" is owned by role "%", which is not a superuser (updating as "%")',
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

-- pg_catalog first on every function's search_path.
ALTER FUNCTION @extschema@.define_purpose(text, interval, integer, boolean, regprocedure, interval, integer, integer, boolean) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.gateway_code_page(text) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.gateway_peek(text, text) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.gateway_redeem(text, jsonb, text) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.issue(text, text, jsonb, interval, text) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.issue_batch(text, text[], jsonb, interval) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.issue_with_code(text, text, jsonb, interval, text) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.peek(text, text, text) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.purge() SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.redeem(text, text, jsonb, text) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.redeem_code(text, text, text, jsonb) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.retire_key(integer) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.revoke(text) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.revoke_subject(text, text) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.rotate_key() SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.seal(text, text, jsonb, interval) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.set_page(text, jsonb) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.raise_throttled(text, integer) SET search_path TO pg_catalog, @extschema@, pg_temp;
ALTER FUNCTION @extschema@.events_append_only() SET search_path TO pg_catalog, @extschema@, pg_temp;

-- revoke_on_change runs as the role doing the UPDATE.
CREATE OR REPLACE FUNCTION @extschema@.revoke_on_change() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, @extschema@, pg_temp AS $$
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

-- Typed-code attempts: keyed by the hash of (purpose, subject), counted across windows.
DROP FUNCTION @extschema@.code_locked(text, text);
ALTER TABLE @extschema@.code_attempts
    ADD COLUMN attempt_key bytea,
    ADD COLUMN consecutive integer,
    ADD COLUMN last_at timestamptz;
UPDATE @extschema@.code_attempts
SET attempt_key = pg_catalog.sha256(pg_catalog.convert_to(purpose || ':' || subject, 'UTF8')),
    consecutive = failures,
    last_at = pg_catalog.now();
ALTER TABLE @extschema@.code_attempts DROP CONSTRAINT code_attempts_pkey;
ALTER TABLE @extschema@.code_attempts DROP COLUMN subject;
ALTER TABLE @extschema@.code_attempts
    ALTER COLUMN consecutive SET NOT NULL,
    ALTER COLUMN last_at SET NOT NULL,
    ADD CONSTRAINT code_attempts_pkey PRIMARY KEY (attempt_key),
    ADD CONSTRAINT code_attempts_attempt_key_check CHECK (pg_catalog.octet_length(attempt_key) = 32);

ALTER TABLE @extschema@.events DROP CONSTRAINT events_event_check;
ALTER TABLE @extschema@.events ADD CONSTRAINT events_event_check
    CHECK (event IN ('issued', 'redeemed', 'rejected', 'revoked', 'purged', 'unlocked'));

CREATE FUNCTION @extschema@."unlock_codes"(
	"purpose" TEXT, /* Option < & str > */
	"subject" TEXT /* Option < & str > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, @extschema@, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'unlock_codes_wrapper';
REVOKE ALL ON FUNCTION @extschema@.unlock_codes(text, text) FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.define_purpose(text, interval, integer, boolean, regprocedure, interval, integer, integer, boolean) IS
'Creates or updates a purpose. ttl: lifetime of its tokens; max_uses: uses per token (NULL = unlimited); revoke_previous: issuing revokes the subject''s other outstanding tokens of this purpose; action: a SECURITY DEFINER function (subject text, payload jsonb, form jsonb) RETURNS jsonb with a pinned search_path, run by redeem in the same transaction; min_interval: least time between two tokens for one subject (issue raises 53400 sooner); code_digits: 6 to 10 for typed codes (issue_with_code, redeem_code), NULL for none; max_attempts: typed-code attempts per subject within a window of the ttl before its codes (never its links) are locked for the rest of the window; bind_browser: links work only with the bind value of the browser that asked for them (status unbound otherwise; codes still work). Owner only.';
COMMENT ON FUNCTION @extschema@.redeem_code(text, text, text, jsonb) IS
'Redeems the subject''s outstanding code token with a typed code (spaces and dashes ignored), exactly like redeem. Every attempt is counted in a transaction of its own before anything is answered, so no ROLLBACK undoes it (53000 if it cannot be counted; nothing is checked then). status: ok, wrong_code, invalid (no code outstanding for the subject), locked (max_attempts attempts within the ttl window, or 100 in a row since the last successful redemption; re-issuing does not reset the count; links are never locked); attempts_left for wrong_code and invalid. Must not run under REPEATABLE READ. Role linktoken_gateway.';
COMMENT ON FUNCTION @extschema@.revoke_on_change() IS
'Trigger function (SECURITY INVOKER): AFTER UPDATE OF <columns> ... FOR EACH ROW EXECUTE FUNCTION linktoken.revoke_on_change(''subject_column'', ''purpose'', ...) revokes the subject''s outstanding tokens of those purposes (through revoke_subject) when a watched column really changed. Role linktoken_issuer: to create such triggers, and for every role that updates a watched table.';
COMMENT ON FUNCTION @extschema@.unlock_codes(text, text) IS
'Ends a subject''s lock-out from typed codes of a purpose (deletes its attempt counter, records an ''unlocked'' event); true if there was one. For support staff after checking who asks. Owner only.';
COMMENT ON TABLE @extschema@.code_attempts IS 'Typed-code attempts per purpose and hashed subject (SHA-256 of purpose:subject), counted outside the caller''s transaction';

COMMENT ON FUNCTION @extschema@.seal(text, text, jsonb, interval) IS
'Seals a stateless token (prefix lts_): purpose, subject, payload and expiry encrypted and authenticated with XChaCha20-Poly1305 under the current key; nothing is written. peek, redeem, revoke and the gateway accept it like a stored token; redeeming one of a purpose with finite max_uses records it in linktoken.spent (exactly once), unlimited purposes write nothing. Refuses (22023) purposes with revoke_previous, min_interval, bind_browser or code_digits, which need the issue on record. Role linktoken_issuer.';
