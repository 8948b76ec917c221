\set s random(1, 1000000000)
WITH t AS MATERIALIZED (SELECT bench_floor.new_token() AS token),
i AS (INSERT INTO bench_floor.tokens (token_hash, purpose, subject, payload, expires_at, max_uses)
      SELECT sha256(convert_to(token, 'UTF8')), 'bench', 'user:' || :s, '{}', now() + interval '1 day', 1 FROM t
      RETURNING id, purpose, subject),
e AS (INSERT INTO bench_floor.events (event, purpose, subject, token_id) SELECT 'issued', purpose, subject, id FROM i)
SELECT token FROM t;
