-- 0.2.0: issue throttling, automatic revocation, sealed tokens and typed codes. (Kept in its own
-- file so the upgrade script linktoken--0.1.0--0.2.0.sql can repeat it verbatim.)

-- Raised by issue() when a purpose's min_interval has not passed since the subject's last token.
-- SQLSTATE 53400 (configuration_limit_exceeded: the purpose's configured limit); DETAIL is the
-- number of seconds to wait.
CREATE FUNCTION @extschema@.raise_throttled(purpose text, wait_seconds integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, @extschema@, pg_temp AS $$
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
-- 0.4.0: SECURITY INVOKER. It reads OLD and NEW, whose column types (and their casts and output
-- functions) belong to whoever owns the table: as a definer function that code ran as the
-- extension owner. Now it runs as the role doing the UPDATE, and the only privileged step is
-- linktoken.revoke_subject(text, text), a definer function that takes plain text; so the role
-- that updates a watched table must be a member of linktoken_issuer.
CREATE FUNCTION @extschema@.revoke_on_change() RETURNS trigger
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

-- Typed-code attempts per (purpose, subject), counted in transactions of their own (so no
-- caller's ROLLBACK undoes them) by a short-lived background worker before redeem_code answers.
-- Subjects are whatever someone typed into the code form, so only a hash is kept.
-- failures: attempts within the window (the purpose's ttl from the first one); max_attempts of
-- them lock the subject's codes until the window ends. consecutive: attempts since the last
-- successful redemption, across windows; 100 lock the codes until a redemption (the link still
-- works) or linktoken.unlock_codes(). A successful redemption deletes the row.
-- (Column order as the 0.3.0 -> 0.4.0 upgrade leaves the table it changes in place.)
CREATE TABLE @extschema@.code_attempts (
    purpose      text NOT NULL,
    failures     integer NOT NULL,
    window_until timestamptz NOT NULL,
    attempt_key  bytea CONSTRAINT code_attempts_pkey PRIMARY KEY
                 CONSTRAINT code_attempts_attempt_key_check CHECK (pg_catalog.octet_length(attempt_key) = 32), -- SHA-256 of 'purpose:subject'
    consecutive  integer NOT NULL,
    last_at      timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.code_attempts', '');
