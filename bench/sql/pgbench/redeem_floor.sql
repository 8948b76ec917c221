\set n :n + 1
\set id :base + :client_id * :stride + :n
UPDATE bench_floor.tokens
SET use_count = use_count + 1, last_used_at = clock_timestamp(),
    consumed_at = CASE WHEN use_count + 1 >= max_uses THEN clock_timestamp() END,
    consumed_pending_event = (use_count + 1 >= max_uses) IS TRUE,
    consumed_ip = CASE WHEN use_count + 1 >= max_uses THEN NULL::text END,
    consumed_ua = CASE WHEN use_count + 1 >= max_uses THEN NULL::text END
WHERE token_hash = sha256(convert_to((SELECT token FROM bench_harness.tokens WHERE variant = 'floor' AND id = :id), 'UTF8'))
  AND purpose = 'bench' AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > clock_timestamp()
RETURNING 'ok' AS status, subject, payload;
