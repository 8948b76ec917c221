\set s random(1, 1000000000)
SELECT bench_plpgsql.issue('bench', 'user:' || :s);
