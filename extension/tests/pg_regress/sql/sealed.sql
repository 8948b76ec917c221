-- Sealed (stateless) tokens: nothing written at seal, accepted wherever a token is.
SELECT linktoken.define_purpose('sl_login', '15 minutes', revoke_previous => false);
SELECT linktoken.define_purpose('sl_unsub', '3 years', max_uses => NULL, revoke_previous => false);
SELECT count(*) AS tokens_before FROM linktoken.tokens \gset
SELECT count(*) AS events_before FROM linktoken.events \gset

SELECT linktoken.seal('sl_login', 'user:42', '{"n": 123456789012345678901234567890.5}') AS s1 \gset
SELECT left(:'s1', 4) AS prefix, length(:'s1') < 200 AS short, :'s1' ~ '^lts_[A-Za-z0-9_-]+$' AS url_safe,
       strpos(:'s1', 'user') = 0 AS subject_not_readable;
-- zero writes: no token row, no event
SELECT (SELECT count(*) FROM linktoken.tokens) - :tokens_before AS new_token_rows,
       (SELECT count(*) FROM linktoken.events) - :events_before AS new_events;

-- peek and redeem accept it; one use, then used (recorded in the spent list)
SELECT status, subject, payload, uses_left FROM linktoken.peek(:'s1', 'sl_login');
SELECT status, subject FROM linktoken.redeem(:'s1', 'sl_login');
SELECT status, subject FROM linktoken.redeem(:'s1', 'sl_login');
SELECT status FROM linktoken.peek(:'s1', 'sl_login');
SELECT purpose, uses, revoked_at IS NULL AS not_revoked FROM linktoken.spent WHERE token_hash = sha256(convert_to(:'s1', 'UTF8'));

-- unlimited purposes (unsubscribe): every redeem ok, nothing written
SELECT count(*) AS spent_before FROM linktoken.spent \gset
SELECT linktoken.seal('sl_unsub', 'list:7:anna') AS u1 \gset
SELECT status FROM linktoken.redeem(:'u1', 'sl_unsub');
SELECT status FROM linktoken.redeem(:'u1', 'sl_unsub');
SELECT status, uses_left FROM linktoken.peek(:'u1', 'sl_unsub');
SELECT (SELECT count(*) FROM linktoken.spent) - :spent_before AS new_spent_rows;

-- invalid: another purpose, tampered, truncated, garbage with the prefix
SELECT status FROM linktoken.peek(:'s1', 'sl_unsub');
SELECT status FROM linktoken.peek(:'u1', 'sl_login');
SELECT status FROM linktoken.peek(left(:'u1', 20) || translate(substr(:'u1', 21, 1), 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', 'BCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_A') || substr(:'u1', 22), 'sl_unsub') AS tampered;
SELECT status FROM linktoken.peek(left(:'u1', length(:'u1') - 3), 'sl_unsub') AS truncated;
SELECT status FROM linktoken.redeem('lts_' || repeat('A', 100), 'sl_unsub') AS garbage;
SELECT status FROM linktoken.redeem('lts_' || repeat('A', 100000), 'sl_unsub') AS huge;

-- expired
SELECT linktoken.seal('sl_login', 'user:43', ttl => '1 second') AS e1 \gset
SELECT pg_sleep(1.5);
SELECT status FROM linktoken.peek(:'e1', 'sl_login');
SELECT status FROM linktoken.redeem(:'e1', 'sl_login');

-- revoke
SELECT linktoken.seal('sl_login', 'user:44') AS r1 \gset
SELECT linktoken.revoke(:'r1') AS revoked, linktoken.revoke(:'r1') AS revoked_again;
SELECT status FROM linktoken.peek(:'r1', 'sl_login');
SELECT status FROM linktoken.redeem(:'r1', 'sl_login');

-- key rotation: old tokens open until their key is retired
SELECT max(kid) AS old_kid FROM linktoken.keys \gset
SELECT linktoken.seal('sl_unsub', 'list:7:ben') AS before_rotation \gset
SELECT linktoken.rotate_key() > :old_kid AS rotated;
SELECT linktoken.seal('sl_unsub', 'list:7:carl') AS after_rotation \gset
SELECT status FROM linktoken.peek(:'before_rotation', 'sl_unsub') AS old_key;
SELECT status FROM linktoken.peek(:'after_rotation', 'sl_unsub') AS new_key;
SELECT linktoken.retire_key(:old_kid) AS retired, linktoken.retire_key(:old_kid) AS retired_again;
SELECT status FROM linktoken.peek(:'before_rotation', 'sl_unsub') AS old_key_retired;
SELECT status FROM linktoken.peek(:'after_rotation', 'sl_unsub') AS new_key;
SELECT try('SELECT linktoken.retire_key(NULL)');

-- the gateway's functions accept sealed tokens too
SELECT linktoken.seal('sl_login', 'user:45') AS g1 \gset
SELECT status, purpose FROM linktoken.gateway_peek(:'g1');
SELECT status, purpose FROM linktoken.gateway_redeem(:'g1', '{"confirm": "yes"}');
SELECT status, purpose FROM linktoken.gateway_redeem(:'g1', '{"confirm": "yes"}');

-- bad input is an error as for issue()
SELECT try($$SELECT linktoken.seal('sl_login', '')$$);
SELECT try($$SELECT linktoken.seal('nope', 'x')$$);
SELECT try($$SELECT linktoken.seal('sl_login', 'x', jsonb_build_object('blob', repeat('x', 9000)))$$);

-- purposes whose options need the issue on record cannot be sealed (0.4.0): 22023, each named
SELECT linktoken.define_purpose('sl_reissue', '1 hour');
SELECT linktoken.define_purpose('sl_throttled', '1 hour', revoke_previous => false, min_interval => '1 minute');
SELECT linktoken.define_purpose('sl_bound', '1 hour', revoke_previous => false, bind_browser => true);
SELECT linktoken.define_purpose('sl_coded', '1 hour', revoke_previous => false, code_digits => 6);
SELECT linktoken.define_purpose('sl_all', '1 hour', min_interval => '1 minute', bind_browser => true, code_digits => 6);
SELECT try(format('SELECT linktoken.seal(%L, %L)', p, 'x')) AS refused
FROM unnest(ARRAY['sl_reissue', 'sl_throttled', 'sl_bound', 'sl_coded', 'sl_all']) AS p;

-- purge drops spent-list entries once the sealed token has expired
UPDATE linktoken.spent SET expires_at = now() - interval '1 minute' WHERE token_hash = sha256(convert_to(:'s1', 'UTF8'));
SELECT linktoken.purge() >= 1 AS purged;
SELECT count(*) AS left_over FROM linktoken.spent WHERE token_hash = sha256(convert_to(:'s1', 'UTF8'));
