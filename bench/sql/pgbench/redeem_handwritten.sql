\set n :n + 1
\set id :base + :client_id * :stride + :n
SELECT * FROM bench_hand.redeem((SELECT token FROM bench_harness.tokens WHERE variant = 'handwritten' AND id = :id), 'bench');
