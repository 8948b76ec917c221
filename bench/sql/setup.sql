-- Benchmark database set-up (throwaway cluster only): the extension, the floor and the PL/pgSQL
-- baseline side by side, and the harness table that hands pre-issued raw tokens to pgbench.
-- psql variable: ttl (lifetime of bench tokens).
CREATE EXTENSION linktoken;
CREATE EXTENSION pgcrypto;

-- The purpose all three variants use: one use, no action, no revoke_previous, no throttle (so
-- issue does no per-subject lock and the floor's plain INSERT is the same work).
SELECT linktoken.define_purpose('bench', :'ttl'::interval, max_uses => 1, revoke_previous => false);
SELECT linktoken.rotate_key();   -- a sealing key for seal()

-- The floor: tables exactly shaped like linktoken's (columns, constraints, indexes, fillfactor),
-- written to with built-in functions only (sha256, gen_random_uuid) in plain statements.
CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.tokens (LIKE linktoken.tokens INCLUDING ALL) WITH (fillfactor = 90);
CREATE SEQUENCE bench_floor.tokens_id_seq OWNED BY bench_floor.tokens.id;
ALTER TABLE bench_floor.tokens ALTER COLUMN id SET DEFAULT nextval('bench_floor.tokens_id_seq');
CREATE TABLE bench_floor.events (LIKE linktoken.events INCLUDING ALL);
CREATE SEQUENCE bench_floor.events_id_seq OWNED BY bench_floor.events.id;
ALTER TABLE bench_floor.events ALTER COLUMN id SET DEFAULT nextval('bench_floor.events_id_seq');
-- A floor token: 'ltk_' + base64url of 32 random bytes (two random UUIDs), like the extension's length.
CREATE FUNCTION bench_floor.new_token() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT 'ltk_' || translate(encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_')
$$;

-- Raw tokens for the redeem runs, read by (variant, id) in all three variants alike.
CREATE SCHEMA bench_harness;
CREATE TABLE bench_harness.tokens (variant text, id integer, token text NOT NULL, PRIMARY KEY (variant, id));
