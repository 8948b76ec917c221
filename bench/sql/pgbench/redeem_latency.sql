\set id random(1, :k)
SELECT * FROM linktoken.redeem((SELECT token FROM bench_harness.tokens WHERE variant = 'latency' AND id = :base + :id), 'bench_multi');
