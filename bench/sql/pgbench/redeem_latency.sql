\set id :base + random(1, :k)
SELECT * FROM linktoken.redeem((SELECT token FROM bench_harness.tokens WHERE variant = 'latency' AND id = :id), 'bench_multi');
