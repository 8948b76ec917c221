-- Errors raised by an app's action reach the caller of redeem, gateway_redeem and redeem_code
-- exactly as raised: custom SQLSTATE, message, detail, hint, context, and the schema, table
-- and constraint of a constraint violation. The token stays unconsumed.
CREATE FUNCTION public.error_fields(q text)
RETURNS TABLE (code text, message text, detail text, hint text, schema_name text,
               table_name text, constraint_name text, context_names_action boolean)
LANGUAGE plpgsql AS $$
DECLARE ctx text;
BEGIN
    EXECUTE q;
    code := 'none';
    RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
        detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT, schema_name = SCHEMA_NAME,
        table_name = TABLE_NAME, constraint_name = CONSTRAINT_NAME, ctx = PG_EXCEPTION_CONTEXT;
    context_names_action := ctx ~ 'PL/pgSQL function (custom|duplicate)\(';
    RETURN NEXT;
END
$$;
CREATE ROLE regress_errs_owner;
CREATE SCHEMA errs AUTHORIZATION regress_errs_owner;
SET ROLE regress_errs_owner;
CREATE TABLE errs.accounts (email text CONSTRAINT accounts_email_key UNIQUE);
INSERT INTO errs.accounts VALUES ('taken@example.org');
CREATE FUNCTION errs.custom(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = errs, pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'the app says no to %', subject
        USING ERRCODE = 'AB123', DETAIL = 'a detail from the app', HINT = 'a hint from the app';
END
$$;
CREATE FUNCTION errs.duplicate(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = errs, pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO errs.accounts VALUES (form->>'email');
    RETURN NULL;
END
$$;
RESET ROLE;
SELECT linktoken.define_purpose('errs_custom', '1 hour', action => 'errs.custom(text,jsonb,jsonb)', code_digits => 6);
SELECT linktoken.define_purpose('errs_dup', '1 hour', action => 'errs.duplicate(text,jsonb,jsonb)');
SELECT linktoken.issue('errs_custom', 'ae:1') AS t1 \gset
SELECT linktoken.issue('errs_dup', 'ae:2') AS t2 \gset
SELECT token AS t3, code AS c3 FROM linktoken.issue_with_code('errs_custom', 'ae:3') \gset

-- A custom SQLSTATE with DETAIL and HINT. Positive control: the action called directly shows
-- what "as raised" is; then the same through each entry point.
SELECT * FROM error_fields($$SELECT errs.custom('ae:1', '{}', '{}')$$);
SELECT * FROM error_fields(format('SELECT linktoken.redeem(%L, %L)', :'t1', 'errs_custom'));
SELECT * FROM error_fields(format('SELECT linktoken.gateway_redeem(%L, %L)', :'t1', '{"confirm": "yes"}'));
SELECT * FROM error_fields(format('SELECT linktoken.redeem_code(%L, %L, %L)', 'errs_custom', 'ae:3', :'c3'));
-- A unique violation keeps its constraint, table and schema (directly, then through redeem).
SELECT * FROM error_fields($$SELECT errs.duplicate('ae:2', '{}', '{"email": "taken@example.org"}')$$);
SELECT * FROM error_fields(format('SELECT linktoken.redeem(%L, %L, %L)', :'t2', 'errs_dup', '{"email": "taken@example.org"}'));
-- psql shows the same error to a caller that does not catch it.
\set VERBOSITY sqlstate
SELECT * FROM linktoken.redeem(:'t1', 'errs_custom');
\set VERBOSITY default
SELECT * FROM linktoken.redeem(:'t1', 'errs_custom');
-- Nothing was consumed; the actions' partial work is gone; a good form then succeeds once.
SELECT status FROM linktoken.peek(:'t1', 'errs_custom') AS custom_link;
SELECT status FROM linktoken.peek(:'t3', 'errs_custom') AS code_link;
SELECT status FROM linktoken.peek(:'t2', 'errs_dup') AS dup_link;
SELECT count(*) AS accounts FROM errs.accounts;
SELECT status FROM linktoken.redeem(:'t2', 'errs_dup', '{"email": "new@example.org"}');
SELECT status FROM linktoken.redeem(:'t2', 'errs_dup', '{"email": "new2@example.org"}');
SELECT email FROM errs.accounts ORDER BY email;
-- An action that fails inside the caller's own savepoint: the caller can go on.
BEGIN;
SAVEPOINT s;
SELECT * FROM error_fields(format('SELECT linktoken.redeem(%L, %L)', :'t1', 'errs_custom'));
ROLLBACK TO SAVEPOINT s;
SELECT status FROM linktoken.peek(:'t1', 'errs_custom') AS still_usable;
COMMIT;

SELECT linktoken.define_purpose('errs_custom', '1 hour', action => NULL, code_digits => 6);
SELECT linktoken.define_purpose('errs_dup', '1 hour', action => NULL);
DROP SCHEMA errs CASCADE;
DROP FUNCTION public.error_fields(text);
DROP ROLE regress_errs_owner;
