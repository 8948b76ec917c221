-- Least privilege beyond privileges.sql: every kind of relation and privilege, column grants,
-- objects of the extension outside its schema, schema and default ACLs, role memberships, and
-- the gateway and issuer roles acting on what privileges.sql does not try (keys, sealing, codes).

-- Objects that belong to the extension but live outside schema linktoken (none expected: all
-- of it, functions included, is in the one schema whose ACL is checked).
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS outside_schema
FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass
LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
LEFT JOIN pg_type t ON d.classid = 'pg_type'::regclass AND t.oid = d.objid
WHERE e.extname = 'linktoken' AND d.deptype = 'e'
  AND coalesce(p.pronamespace, c.relnamespace, t.typnamespace) IS DISTINCT FROM 'linktoken'::regnamespace
ORDER BY 1;

-- Any privilege at all, on any relation kind (tables, partitioned tables, views, materialized
-- views, foreign tables, sequences), granted to PUBLIC or to either role, on the table or on
-- any column (has_table_privilege misses column grants).
SELECT c.relname, c.relkind, r.rolname, priv
FROM pg_class c
CROSS JOIN (SELECT oid, rolname FROM pg_roles WHERE rolname IN ('linktoken_issuer', 'linktoken_gateway')) r
CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS priv
WHERE c.relnamespace = 'linktoken'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND (has_table_privilege(r.oid, c.oid, priv)
       OR (priv IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') AND has_any_column_privilege(r.oid, c.oid, priv)))
UNION ALL
SELECT c.relname, c.relkind, r.rolname, priv
FROM pg_class c
CROSS JOIN (SELECT oid, rolname FROM pg_roles WHERE rolname IN ('linktoken_issuer', 'linktoken_gateway')) r
CROSS JOIN unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) AS priv
WHERE c.relnamespace = 'linktoken'::regnamespace AND c.relkind = 'S'
  AND has_sequence_privilege(r.oid, c.oid, priv);
SELECT c.relname, a.attname, acl.grantee::regrole, acl.privilege_type
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid, aclexplode(a.attacl) acl
WHERE c.relnamespace = 'linktoken'::regnamespace AND a.attacl IS NOT NULL ORDER BY 1, 2, 3, 4;
-- Relations whose ACL names anyone but the owner (NULL acl = owner only for relations): only
-- the mailer's reading of the outbox (0.6.0), and nothing for PUBLIC.
SELECT c.relname, CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE acl.grantee::regrole::text END AS grantee,
       acl.privilege_type
FROM pg_class c, aclexplode(c.relacl) acl
WHERE c.relnamespace = 'linktoken'::regnamespace AND acl.grantee <> c.relowner ORDER BY 1, 2, 3;

-- The schema: usage for the three roles only, CREATE for its owner only; nothing for PUBLIC.
SELECT CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE acl.grantee::regrole::text END AS grantee,
       acl.privilege_type
FROM pg_namespace n, aclexplode(n.nspacl) acl
WHERE n.nspname = 'linktoken' AND acl.grantee <> n.nspowner ORDER BY 1, 2;
-- No default privileges that would hand future objects of the schema to anyone.
SELECT defaclrole::regrole, defaclobjtype, defaclacl FROM pg_default_acl
WHERE defaclnamespace IN (0, 'linktoken'::regnamespace);
-- CVE-2018-1058 mitigation of PostgreSQL 15: PUBLIC cannot create objects in schema public.
SELECT has_schema_privilege('linktoken_gateway', 'public', 'CREATE') AS gateway_creates_in_public,
       has_schema_privilege('linktoken_issuer', 'public', 'CREATE') AS issuer_creates_in_public,
       EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) acl
               WHERE n.nspname = 'public' AND acl.grantee = 0 AND acl.privilege_type = 'CREATE') AS public_create_granted;

-- The roles hold no other role and no attribute beyond NOLOGIN; neither is in the other.
SELECT r.rolname, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
       (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid) AS member_of
FROM pg_roles r WHERE r.rolname IN ('linktoken_issuer', 'linktoken_gateway') ORDER BY 1;
SELECT pg_has_role('linktoken_gateway', 'linktoken_issuer', 'USAGE') AS gateway_has_issuer,
       pg_has_role('linktoken_issuer', 'linktoken_gateway', 'USAGE') AS issuer_has_gateway;
-- Every function of the schema belongs to the extension's owner (a superuser), not to a role
-- an application logs in with.
SELECT p.oid::regprocedure AS not_owned_by_extension_owner
FROM pg_proc p, pg_extension e
WHERE e.extname = 'linktoken' AND p.pronamespace = 'linktoken'::regnamespace AND p.proowner <> e.extowner;
SELECT rolsuper AS extension_owner_is_superuser FROM pg_roles r JOIN pg_extension e ON e.extowner = r.oid
WHERE e.extname = 'linktoken';

-- Acting as each role on what privileges.sql does not try.
SELECT linktoken.define_purpose('sec_login', '10 minutes', code_digits => 6);
CREATE ROLE regress_sec_web LOGIN IN ROLE linktoken_issuer;
CREATE ROLE regress_sec_gw LOGIN IN ROLE linktoken_gateway;
SELECT linktoken.rotate_key() IS NOT NULL AS have_key;

-- The gateway: no sealing, no codes to issue, no keys, no spent list or attempt counts, no
-- owner functions.
SET ROLE regress_sec_gw;
SELECT q AS gateway_tries, try(q) AS outcome FROM (VALUES
    ($$SELECT linktoken.seal('sec_login', 'u:1')$$),
    ($$SELECT linktoken.issue_with_code('sec_login', 'u:1')$$),
    ($$SELECT linktoken.rotate_key()$$),
    ($$SELECT linktoken.retire_key(1)$$),
    ($$SELECT linktoken.set_page('sec_login', '{}')$$),
    ($$SELECT linktoken.revoke_on_change()$$),
    ($$SELECT secret FROM linktoken.keys$$),
    ($$SELECT count(*) FROM linktoken.keys$$),
    ($$SELECT * FROM linktoken.spent$$),
    ($$SELECT * FROM linktoken.code_attempts$$),
    ($$DELETE FROM linktoken.code_attempts$$),
    ($$SELECT linktoken.unlock_codes('sec_login', 'u:1')$$),
    ($$SELECT nextval('linktoken.events_id_seq')$$),
    ($$SELECT * FROM linktoken.audit$$),
    ($$SET linktoken.token_bytes = 16$$),
    ($$SET linktoken.retention = 0$$),
    ($$CREATE TABLE linktoken.evil (x int)$$),
    ($$CREATE FUNCTION linktoken.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT pg_catalog.now()'$$)
) v(q);
RESET ROLE;

-- The issuer: no redemption by any door (redeem, redeem_code, the gateway's functions), no
-- keys, no owner functions.
SET ROLE regress_sec_web;
SELECT token AS tok, code AS cod FROM linktoken.issue_with_code('sec_login', 'u:1') \gset
SELECT q AS issuer_tries, try(q) AS outcome FROM (VALUES
    ($$SELECT linktoken.gateway_code_page('sec_login')$$),
    ($$SELECT linktoken.rotate_key()$$),
    ($$SELECT linktoken.retire_key(1)$$),
    ($$SELECT linktoken.set_page('sec_login', '{}')$$),
    ($$SELECT secret FROM linktoken.keys$$),
    ($$SELECT * FROM linktoken.spent$$),
    ($$SELECT * FROM linktoken.code_attempts$$),
    ($$SET linktoken.token_bytes = 16$$),
    ($$CREATE TABLE linktoken.evil (x int)$$)
) v(q);
-- With the real token and code (shown by function name only: the expected output holds no
-- secret and stays the same from run to run).
SELECT split_part(q, '(', 1) AS issuer_tries, try(q) AS outcome FROM (VALUES
    (format('SELECT linktoken.redeem(%L, %L)', :'tok', 'sec_login')),
    (format('SELECT linktoken.redeem_code(%L, %L, %L)', 'sec_login', 'u:1', :'cod')),
    (format('SELECT linktoken.gateway_redeem(%L, %L)', :'tok', '{"confirm": "yes"}')),
    (format('SELECT linktoken.gateway_peek(%L)', :'tok'))
) v(q);
-- Nothing was consumed by the attempts.
SELECT status FROM linktoken.peek(:'tok', 'sec_login');
RESET ROLE;
SELECT count(*) AS code_failures_recorded FROM linktoken.code_attempts
WHERE attempt_key = sha256(convert_to('sec_login:u:1', 'UTF8'));

DROP ROLE regress_sec_web, regress_sec_gw;
