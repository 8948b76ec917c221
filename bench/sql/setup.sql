-- Benchmark database set-up (throwaway cluster only): the extension, the floor, the hand-written
-- table and the PL/pgSQL baseline side by side (the last two are loaded from bench/baseline/ by
-- bench.py), and the harness table that hands pre-issued raw tokens to pgbench.
-- psql variable: ttl (lifetime of bench tokens).
CREATE EXTENSION linktoken;
-- pgcrypto (or, on a server without it, bench/baseline/pgcrypto_shim.sql) is loaded by bench.py.

-- The purpose the variants use: one use, no action, no revoke_previous, no throttle (so issue
-- does no per-subject lock and the floor's plain INSERT is the same work).
SELECT linktoken.define_purpose('bench', :'ttl'::interval, max_uses => 1, revoke_previous => false);
SELECT linktoken.rotate_key();   -- a sealing key for seal()

-- The floor: tables shaped exactly like linktoken's (columns, defaults, indexes, storage
-- parameters), written to with built-in functions only (sha256, gen_random_uuid) in plain
-- statements. Nothing below names a column: a column whose default draws from one of
-- linktoken's sequences gets a sequence of its own, whatever the column is called.
CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.tokens (LIKE linktoken.tokens INCLUDING ALL);
CREATE TABLE bench_floor.events (LIKE linktoken.events INCLUDING ALL);
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.relname, a.attname
             FROM pg_attrdef d
             JOIN pg_class c ON c.oid = d.adrelid
             JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
             WHERE c.relnamespace = 'bench_floor'::regnamespace
               AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'
    LOOP
        EXECUTE format('CREATE SEQUENCE bench_floor.%I OWNED BY bench_floor.%I.%I',
                       r.relname || '_' || r.attname || '_seq', r.relname, r.attname);
        EXECUTE format('ALTER TABLE bench_floor.%I ALTER COLUMN %I SET DEFAULT nextval(%L::regclass)',
                       r.relname, r.attname, format('bench_floor.%I', r.relname || '_' || r.attname || '_seq'));
    END LOOP;
    FOR r IN SELECT c.relname, c.reloptions FROM pg_class c
             WHERE c.oid IN ('linktoken.tokens'::regclass, 'linktoken.events'::regclass) AND c.reloptions IS NOT NULL
    LOOP
        EXECUTE format('ALTER TABLE bench_floor.%I SET (%s)', r.relname, array_to_string(r.reloptions, ', '));
    END LOOP;
END
$$;
-- A floor token: 'ltk_' + base64url of 32 random bytes (two random UUIDs), like the extension's length.
CREATE FUNCTION bench_floor.new_token() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT 'ltk_' || translate(encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_')
$$;

-- Raw tokens for the redeem runs, read by (variant, id) in all variants alike.
CREATE SCHEMA bench_harness;
CREATE TABLE bench_harness.tokens (variant text, id integer, token text NOT NULL, PRIMARY KEY (variant, id));
