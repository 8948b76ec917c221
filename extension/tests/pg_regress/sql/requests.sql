-- request(): the "enter your email" half of a flow (0.6.0). The same answer (nothing, no error)
-- for known, unknown, throttled and capped identifiers; one message per accepted request in the
-- outbox, whose secret part is sealed (no token shape in any column); the resolver runs as its
-- owner with only the identifier.
CREATE ROLE regress_rq_owner;
CREATE SCHEMA rq AUTHORIZATION regress_rq_owner;
SET ROLE regress_rq_owner;
CREATE TABLE rq.users (id int PRIMARY KEY, email text NOT NULL UNIQUE);
INSERT INTO rq.users VALUES (1, 'anna@example.org'), (2, 'ben@example.org');
CREATE TABLE rq.calls (identifier text, ran_as text);
CREATE FUNCTION rq.find_user(identifier text, OUT subject text, OUT address text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = rq, pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO rq.calls VALUES (identifier, current_user);
    SELECT u.id::text, u.email INTO subject, address FROM rq.users u WHERE lower(u.email) = lower(btrim(identifier));
END
$$;
CREATE FUNCTION rq.not_a_resolver(identifier text) RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = rq, pg_catalog, pg_temp AS $$ SELECT identifier $$;
CREATE FUNCTION rq.invoker(identifier text, OUT subject text, OUT address text)
LANGUAGE sql SET search_path = rq, pg_catalog, pg_temp AS $$ SELECT '1', 'x@example.org' $$;
RESET ROLE;

-- Resolvers are checked like actions.
SELECT try($$SELECT linktoken.define_purpose('rq_bad', '1 hour', resolver => 'rq.not_a_resolver(text)')$$);
SELECT try($$SELECT linktoken.define_purpose('rq_bad', '1 hour', resolver => 'rq.invoker(text)')$$);
SELECT linktoken.define_purpose('rq_login', '15 minutes', resolver => 'rq.find_user(text)',
                                min_interval => '1 minute', code_digits => 6);
SELECT linktoken.define_purpose('rq_plain', '1 hour');

-- Without a mailer key, request() refuses (the same for every identifier).
SELECT try($$SELECT linktoken.request('rq_login', 'anna@example.org')$$);
SELECT try($$SELECT linktoken.request('rq_login', 'nobody@example.org')$$);
-- An X25519 public key (32 bytes; the mailer's private key is not needed here).
SELECT linktoken.set_mailer_key(sha256('regress mailer key 1')) AS kid1 \gset
SELECT try($$SELECT linktoken.set_mailer_key('\x0102'::bytea)$$);
-- A purpose without a resolver has no request form.
SELECT try($$SELECT linktoken.request('rq_plain', 'anna@example.org')$$);
SELECT linktoken.gateway_request_page('rq_login') IS NOT NULL AS login_has_form,
       linktoken.gateway_request_page('rq_plain') IS NULL AS plain_has_none,
       linktoken.gateway_request_page('no such') IS NULL AS malformed_has_none;

-- Known, unknown, odd input, throttled: all answer the same (void, no error).
SELECT linktoken.request('rq_login', 'anna@example.org')::text AS known;
SELECT linktoken.request('rq_login', 'nobody@example.org')::text AS unknown;
SELECT linktoken.request('rq_login', '')::text AS empty;
SELECT linktoken.request('rq_login', NULL)::text AS null_identifier;
SELECT linktoken.request('rq_login', repeat('x', 5000))::text AS too_long;
SELECT linktoken.request('rq_login', ' ANNA@example.org ')::text AS throttled;
-- One message, for the known identifier only; a token and a code were issued for it.
SELECT purpose, address, one_click, sent_at IS NULL AS pending, attempts,
       key_fingerprint = (SELECT fingerprint FROM linktoken.mailer_keys WHERE kid = :kid1) AS sealed_to_current_key,
       expires_at > now() + interval '14 minutes' AS expiry_from_ttl
FROM linktoken.outbox ORDER BY id;
SELECT count(*) AS tokens, bool_and(code_hash IS NOT NULL) AS with_code FROM linktoken.tokens WHERE purpose = 'rq_login';
-- No column of the outbox holds anything shaped like a token or the code's digits in clear.
SELECT count(*) AS token_shapes FROM linktoken.outbox o
WHERE o::text ~ 'lt[ks]_[A-Za-z0-9_-]{20,}' OR encode(o.sealed, 'escape') ~ 'lt[ks]_';
-- The resolver ran as its owner, with the identifier and nothing else (the throttled and
-- odd-but-plausible inputs too; empty and too-long input never reached it).
SELECT identifier, ran_as FROM rq.calls ORDER BY identifier;
-- The audit log: by subject when known, by a hash of the identifier when not.
SELECT status, subject, detail ? 'request_key' AS hashed_identifier
FROM linktoken.events WHERE event = 'requested' AND purpose = 'rq_login' ORDER BY id;
SELECT count(*) AS identifiers_in_clear FROM linktoken.events
WHERE event = 'requested' AND (events::text LIKE '%nobody@%');

-- The per-identifier cap counts unknown identifiers too, silently.
SET linktoken.requests_per_identifier = 2;
SELECT linktoken.request('rq_login', 'eve@example.org')::text AS r1,
       linktoken.request('rq_login', 'EVE@example.org')::text AS r2,
       linktoken.request('rq_login', 'eve@example.org')::text AS r3;
SELECT status, count(*) FROM linktoken.events
WHERE event = 'requested' AND purpose = 'rq_login' AND status IN ('unknown', 'capped') GROUP BY status ORDER BY status;
RESET linktoken.requests_per_identifier;

-- Rotating the key: new messages go to the new key, earlier ones keep theirs.
SELECT linktoken.set_mailer_key(sha256('regress mailer key 2')) AS kid2 \gset
SELECT linktoken.request('rq_login', 'ben@example.org')::text AS known_after_rotation;
SELECT address, key_fingerprint = (SELECT fingerprint FROM linktoken.mailer_keys WHERE kid = :kid2) AS new_key
FROM linktoken.outbox ORDER BY id;
SELECT kid = :kid1 AS first, retired_at IS NOT NULL AS retired FROM linktoken.mailer_keys ORDER BY kid;

-- The mailer's role: reads the outbox and marks messages; nothing else.
CREATE ROLE regress_rq_mailer IN ROLE linktoken_mailer;
SET ROLE regress_rq_mailer;
SELECT count(*) AS messages_visible FROM linktoken.outbox;
SELECT try($$UPDATE linktoken.outbox SET sent_at = now(), attempts = attempts + 1 WHERE address = 'anna@example.org'$$);
SELECT try($$UPDATE linktoken.outbox SET sealed = '\x00'$$);
SELECT try($$UPDATE linktoken.outbox SET address = 'attacker@example.org'$$);
SELECT try($$DELETE FROM linktoken.outbox$$);
SELECT try($$INSERT INTO linktoken.outbox (purpose, address, expires_at, one_click, key_fingerprint, sealed) VALUES ('x', 'y', now(), false, '\x00', '\x00')$$);
SELECT try($$SELECT * FROM linktoken.tokens$$);
SELECT try($$SELECT * FROM linktoken.mailer_keys$$);
SELECT try($$SELECT linktoken.request('rq_login', 'anna@example.org')$$);
RESET ROLE;
-- Others cannot read the outbox, and only the owner sets keys.
CREATE ROLE regress_rq_web IN ROLE linktoken_gateway;
SET ROLE regress_rq_web;
SELECT try($$SELECT * FROM linktoken.outbox$$);
SELECT try($$SELECT linktoken.set_mailer_key(sha256('x'))$$);
SELECT linktoken.request('rq_login', 'nobody2@example.org')::text AS gateway_may_request;
RESET ROLE;

-- Clean up.
SELECT linktoken.define_purpose('rq_login', '15 minutes');
DROP SCHEMA rq CASCADE;
DROP ROLE regress_rq_owner, regress_rq_mailer, regress_rq_web;
