\set s random(1, 1000000000)
WITH t AS MATERIALIZED (SELECT bench_floor.new_token() AS token),
i AS (INSERT INTO bench_floor.tokens (token_hash, purpose, subject, payload, expires_at, max_uses)
      SELECT sha256(convert_to(token, 'UTF8')), 'bench', 'user:' || :s, '{}', now() + interval '1 day', 1 FROM t)
SELECT token FROM t;
