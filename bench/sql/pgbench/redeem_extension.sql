\set n :n + 1
\set id :base + :client_id * :stride + :n
SELECT * FROM linktoken.redeem((SELECT token FROM bench_harness.tokens WHERE variant = 'extension' AND id = :id), 'bench');
