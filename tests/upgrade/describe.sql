-- A normalised description of everything the extension owns, for comparing an upgraded
-- installation with a fresh one (pg_dump shows only CREATE EXTENSION for extension members).
\pset footer off
\pset format unaligned
-- Columns in their order; the position is counted without dropped columns (an upgrade that
-- drops one leaves a gap in attnum that a fresh install does not have).
SELECT 'column', table_name, row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position),
       column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'linktoken' ORDER BY 2, 3;
SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'linktoken'::regnamespace ORDER BY 2, 3;
SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'linktoken' ORDER BY 2;
SELECT 'function', p.oid::regprocedure::text, pg_get_function_result(p.oid), pg_get_function_arguments(p.oid),
       p.prosecdef, p.provolatile, p.proparallel, p.proisstrict, p.proconfig, md5(p.prosrc), p.probin,
       p.proacl::text, obj_description(p.oid, 'pg_proc')
FROM pg_proc p WHERE p.pronamespace = 'linktoken'::regnamespace ORDER BY 2;
SELECT 'trigger', tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'linktoken'::regnamespace) ORDER BY 2, 3;
SELECT 'relation', c.relname, c.relkind, c.relacl::text, c.reloptions, obj_description(c.oid, 'pg_class')
FROM pg_class c WHERE c.relnamespace = 'linktoken'::regnamespace ORDER BY 2;
SELECT 'schema', nspacl::text, obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'linktoken';
SELECT 'config', (SELECT array_agg(c::regclass::text ORDER BY c::regclass::text) FROM unnest(extconfig) c), extversion
FROM pg_extension WHERE extname = 'linktoken';
