\set s random(1, 1000000000)
SELECT linktoken.issue('bench', 'user:' || :s);
