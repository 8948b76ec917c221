-- Least privilege, checked in the catalog and by acting as each role.

-- No linktoken function is executable by PUBLIC (neither a NULL acl, which means the
-- default PUBLIC EXECUTE, nor an explicit grant to PUBLIC).
SELECT p.oid::regprocedure AS public_executable
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'linktoken'
  AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'));

-- Every SECURITY DEFINER function pins search_path, with pg_temp last.
SELECT p.oid::regprocedure AS function, p.prosecdef AS definer, p.proconfig
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'linktoken' ORDER BY p.oid::regprocedure::text;

-- Who may execute what.
SELECT r.rolname, p.oid::regprocedure AS function
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN pg_roles r
WHERE n.nspname = 'linktoken' AND r.rolname IN ('linktoken_issuer', 'linktoken_gateway')
  AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
ORDER BY r.rolname, p.oid::regprocedure::text;

-- The roles cannot log in, and neither they nor PUBLIC can read any table or sequence.
SELECT rolname, rolcanlogin, rolsuper, rolinherit FROM pg_roles WHERE rolname IN ('linktoken_issuer', 'linktoken_gateway') ORDER BY 1;
SELECT c.relname, r.rolname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN pg_roles r
WHERE n.nspname = 'linktoken' AND c.relkind IN ('r', 'S')
  AND r.rolname IN ('linktoken_issuer', 'linktoken_gateway')
  AND (has_table_privilege(r.oid, c.oid, 'SELECT') OR has_table_privilege(r.oid, c.oid, 'INSERT')
       OR has_table_privilege(r.oid, c.oid, 'UPDATE') OR has_table_privilege(r.oid, c.oid, 'DELETE'));
SELECT has_schema_privilege('linktoken_gateway', 'linktoken', 'CREATE') AS gateway_can_create,
       has_schema_privilege('linktoken_issuer', 'linktoken', 'CREATE') AS issuer_can_create;

SELECT linktoken.define_purpose('reset', '1 hour');
CREATE ROLE regress_web LOGIN IN ROLE linktoken_issuer;
CREATE ROLE regress_gw LOGIN IN ROLE linktoken_gateway;
CREATE ROLE regress_nobody LOGIN;

-- The application (issuer) issues, peeks and revokes, but cannot redeem or read tables.
SET ROLE regress_web;
SELECT linktoken.issue('reset', 'p:1') AS tok \gset
SELECT status FROM linktoken.peek(:'tok', 'reset');
SELECT try(format('SELECT linktoken.redeem(%L, %L)', :'tok', 'reset'));
SELECT try('SELECT * FROM linktoken.tokens');
SELECT try('SELECT token_hash FROM linktoken.tokens');
SELECT try('SELECT * FROM linktoken.events');
SELECT try('SELECT * FROM linktoken.purposes');
SELECT try($$SELECT linktoken.define_purpose('evil', '1 year')$$);
SELECT try('SELECT linktoken.purge()');
SELECT try($$INSERT INTO linktoken.tokens (token_hash, purpose, subject, expires_at) VALUES (sha256('x'), 'reset', 'p', now() + interval '1 year')$$);
RESET ROLE;

-- The gateway peeks and redeems, but cannot issue, revoke or read a hash.
SET ROLE regress_gw;
SELECT status FROM linktoken.peek(:'tok', 'reset');
SELECT try($$SELECT linktoken.issue('reset', 'p:2')$$);
SELECT try(format('SELECT linktoken.revoke(%L)', :'tok'));
SELECT try($$SELECT linktoken.revoke_subject('p:1')$$);
SELECT try('SELECT token_hash FROM linktoken.tokens');
SELECT try('SELECT * FROM linktoken.events');
SELECT try($$UPDATE linktoken.tokens SET expires_at = now() + interval '10 years'$$);
SELECT status FROM linktoken.redeem(:'tok', 'reset');
RESET ROLE;

-- A role without grants can do nothing at all.
SET ROLE regress_nobody;
SELECT try(format('SELECT linktoken.peek(%L, %L)', 'x', 'reset'));
SELECT try($$SELECT linktoken.issue('reset', 'p:3')$$);
SELECT try($$SELECT linktoken.redeem('x', 'reset')$$);
RESET ROLE;

DROP ROLE regress_web, regress_gw, regress_nobody;
