-- Only for a server without pgcrypto (the PostgreSQL 16 and 18 under /opt/linktoken-pg come
-- without contrib's pgcrypto): the two pgcrypto functions that the hand-written and the PL/pgSQL
-- variants call, created in public under pgcrypto's names, over built-ins that do the same work.
--   gen_random_bytes(n): bytes from pg_strong_random (the source pgcrypto reads too), drawn as two
--     random UUIDs (gen_random_uuid, 122 random bits each: 244 random bits in 32 bytes); n <= 32.
--   digest(t, 'sha256'): the built-in sha256() of the text's bytes (pgcrypto hashes the same bytes
--     with the same OpenSSL/cryptohash code).
-- Both are single-expression SQL functions, so the planner inlines them into the calling
-- statement (no SQL-function call per use); bench.py checks that and says so in the report.
-- Loaded into the throwaway benchmark database only, by bench/sql/bench.py.
CREATE FUNCTION public.gen_random_bytes(integer) RETURNS bytea
LANGUAGE sql VOLATILE STRICT PARALLEL SAFE
AS $$ SELECT substring(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) FROM 1 FOR $1) $$;

CREATE FUNCTION public.digest(text, text) RETURNS bytea
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT CASE WHEN lower($2) = 'sha256' THEN sha256(convert_to($1, 'UTF8')) END $$;
