-- The bar of issue 11: the one-time-token table a DBA writes by hand in ten minutes.
--
-- One table, an index for revoking by subject, two PL/pgSQL functions on pgcrypto. It does far
-- less than linktoken, and that is the point: linktoken should be about as fast while doing more.
-- What it leaves out: no audit log (nothing records an issue, a redemption or a failed attempt),
-- no use limits (every token is one-use), no purposes table (any purpose string is accepted, the
-- caller passes the lifetime), no revocation function (the index only makes one possible), no
-- typed codes, no browser binding, no sealed tokens, no argument checks, no token checksum (a
-- mistyped token costs an index probe), and no statuses: redeem answers found (subject and
-- payload) or not found (NULLs), never why. No SECURITY DEFINER and no pinned search_path:
-- the functions run with the caller's rights and search_path (pgcrypto in public).
--
-- Loaded into the throwaway benchmark database only (needs CREATE EXTENSION pgcrypto first).

CREATE SCHEMA bench_hand;

CREATE TABLE bench_hand.security_tokens (
    token_hash  bytea PRIMARY KEY,          -- SHA-256 of the token; the token itself is never stored
    purpose     text NOT NULL,
    subject     text NOT NULL,
    payload     jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz
);
CREATE INDEX security_tokens_subject_idx ON bench_hand.security_tokens (subject, purpose);

-- A new token: 32 random bytes, hex-encoded; only its hash goes into the table.
CREATE FUNCTION bench_hand.issue(p_purpose text, p_subject text, p_payload jsonb DEFAULT '{}',
                                 p_ttl interval DEFAULT interval '1 day')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t text := encode(gen_random_bytes(32), 'hex');
BEGIN
    INSERT INTO bench_hand.security_tokens (token_hash, purpose, subject, payload, expires_at)
    VALUES (digest(t, 'sha256'), p_purpose, p_subject, p_payload, now() + p_ttl);
    RETURN t;
END
$$;

-- Consumes the token if it is unused, unexpired and of this purpose: subject and payload, or
-- NULLs when it is not (whatever the reason). One conditional UPDATE, so a concurrent redeem of
-- the same token waits for this one, re-checks consumed_at and finds nothing.
CREATE FUNCTION bench_hand.redeem(p_token text, p_purpose text, OUT subject text, OUT payload jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bench_hand.security_tokens t SET consumed_at = now()
    WHERE t.token_hash = digest(p_token, 'sha256') AND t.purpose = p_purpose
      AND t.consumed_at IS NULL AND t.expires_at > now()
    RETURNING t.subject, t.payload INTO subject, payload;
END
$$;
