\set s random(1, 1000000000)
SELECT linktoken.seal('bench', 'user:' || :s);
