-- Tokens in every state and the events about them, written as every released version before
-- 0.5.0 stores them (tokens with ids, events naming tokens by id). psql variables t1..t5 are
-- real tokens (valid checksums). Checked after the upgrade by states-check.sql.
INSERT INTO linktoken.purposes (name, ttl, max_uses, revoke_previous)
VALUES ('upg_one', '1 day', 1, false), ('upg_multi', '1 day', 3, false);
INSERT INTO linktoken.tokens (id, token_hash, purpose, subject, expires_at, max_uses, use_count,
                              last_used_at, consumed_at, revoked_at) VALUES
    (101, sha256(convert_to(:'t1', 'UTF8')), 'upg_one', 's:live', now() + interval '1 day', 1, 0, NULL, NULL, NULL),
    (102, sha256(convert_to(:'t2', 'UTF8')), 'upg_one', 's:used', now() + interval '1 day', 1, 1,
          now() - interval '1 hour', now() - interval '1 hour', NULL),
    (103, sha256(convert_to(:'t3', 'UTF8')), 'upg_one', 's:expired', now() - interval '1 hour', 1, 0, NULL, NULL, NULL),
    (104, sha256(convert_to(:'t4', 'UTF8')), 'upg_one', 's:revoked', now() + interval '1 day', 1, 0,
          NULL, NULL, now() - interval '1 hour'),
    (105, sha256(convert_to(:'t5', 'UTF8')), 'upg_multi', 's:partial', now() + interval '1 day', 3, 1,
          now() - interval '1 hour', NULL, NULL);
INSERT INTO linktoken.events (event, status, purpose, subject, token_id, client_ip, user_agent, detail) VALUES
    ('issued', NULL, 'upg_one', 's:live', 101, '198.51.100.1', 'app/1', NULL),
    ('issued', NULL, 'upg_one', 's:used', 102, NULL, NULL, NULL),
    ('issued', NULL, 'upg_one', 's:expired', 103, NULL, NULL, NULL),
    ('issued', NULL, 'upg_one', 's:revoked', 104, NULL, NULL, NULL),
    ('issued', NULL, 'upg_multi', 's:partial', 105, NULL, NULL, NULL),
    ('redeemed', 'ok', 'upg_one', 's:used', 102, '198.51.100.2', 'browser/2', NULL),
    ('rejected', 'used', 'upg_one', 's:used', 102, '198.51.100.3', NULL, NULL),
    ('revoked', NULL, 'upg_one', 's:revoked', 104, NULL, NULL, '{"reason": "revoke"}'),
    ('redeemed', 'ok', 'upg_multi', 's:partial', 105, NULL, NULL, NULL),
    ('issued', NULL, 'upg_one', 's:gone', 999, NULL, NULL, NULL),
    ('redeemed', 'ok', 'upg_one', 's:gone', 999, '198.51.100.9', NULL, NULL),
    ('rejected', 'invalid', NULL, NULL, NULL, '198.51.100.4', NULL, NULL);
