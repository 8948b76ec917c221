-- Runs once when the regression database is (re)created.
CREATE EXTENSION linktoken;
-- try(sql): runs a statement and shows its SQLSTATE and message instead of failing, so the
-- expected output pins the exact error code.
CREATE FUNCTION public.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- The text of a failing statement goes to the server log (log_min_error_statement); these
-- tests put tokens into statement text through psql variables, so keep such text out of the
-- log the test run scans for leaked tokens. Applications pass tokens as bind parameters.
ALTER DATABASE linktoken_regress SET log_min_error_statement = panic;
