\set s random(1, 1000000000)
SELECT bench_hand.issue('bench', 'user:' || :s);
