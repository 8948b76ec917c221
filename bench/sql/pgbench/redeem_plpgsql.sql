\set n :n + 1
\set id :base + :client_id * :stride + :n
SELECT * FROM bench_plpgsql.redeem((SELECT token FROM bench_harness.tokens WHERE variant = 'plpgsql' AND id = :id), 'bench');
