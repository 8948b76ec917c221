-- Bad arguments: a clear message naming the argument, with a specific SQLSTATE.
SELECT linktoken.define_purpose('reset', '1 hour');

-- define_purpose
SELECT try($$SELECT linktoken.define_purpose(NULL, '1 hour')$$);
SELECT try($$SELECT linktoken.define_purpose('', '1 hour')$$);
SELECT try($$SELECT linktoken.define_purpose('Bad Name', '1 hour')$$);
SELECT try($$SELECT linktoken.define_purpose(repeat('a', 64), '1 hour')$$);
SELECT try($$SELECT linktoken.define_purpose('x', NULL)$$);
SELECT try($$SELECT linktoken.define_purpose('x', '0 seconds')$$);
SELECT try($$SELECT linktoken.define_purpose('x', '-1 day')$$);
SELECT try($$SELECT linktoken.define_purpose('x', '1 hour', max_uses => 0)$$);
SELECT try($$SELECT linktoken.define_purpose('x', '1 hour', max_uses => -2)$$);
SELECT try($$SELECT linktoken.define_purpose('x', '1 hour', revoke_previous => NULL)$$);
SELECT count(*) AS purposes_named_x FROM linktoken.purposes WHERE name = 'x';

-- issue
SELECT try($$SELECT linktoken.issue(NULL, 'u')$$);
SELECT try($$SELECT linktoken.issue('', 'u')$$);
SELECT try($$SELECT linktoken.issue('nope', 'u')$$);
SELECT try($$SELECT linktoken.issue('reset', NULL)$$);
SELECT try($$SELECT linktoken.issue('reset', '')$$);
SELECT try($$SELECT linktoken.issue('reset', '   ')$$);
SELECT try($$SELECT linktoken.issue('reset', E'a\nb')$$);
SELECT try($$SELECT linktoken.issue('reset', repeat('u', 1025))$$);
SELECT try($$SELECT linktoken.issue('reset', 'u', ttl => '0 seconds')$$);
SELECT try($$SELECT linktoken.issue('reset', 'u', ttl => '-5 minutes')$$);
SELECT try($$SELECT linktoken.issue('reset', 'u', jsonb_build_object('blob', repeat('x', 70000)))$$);
SELECT try($$SELECT linktoken.issue('reset', 'u', jsonb_build_object('blob', repeat('x', 60000)))$$);
-- NULL payload is stored as {}
SELECT payload FROM linktoken.peek(linktoken.issue('reset', 'np', NULL), 'reset');
SELECT count(*) AS tokens_for_u FROM linktoken.tokens WHERE subject = 'u';

-- peek / redeem / revoke_subject: the purpose comes from the application, so it is checked
SELECT try($$SELECT linktoken.peek('x', NULL)$$);
SELECT try($$SELECT linktoken.redeem('x', NULL)$$);
SELECT try($$SELECT linktoken.peek('x', 'nope')$$);
SELECT try($$SELECT linktoken.redeem('x', 'nope')$$);
SELECT try($$SELECT linktoken.revoke_subject(NULL)$$);
SELECT try($$SELECT linktoken.revoke_subject('')$$);
SELECT try($$SELECT linktoken.revoke_subject('u', 'nope')$$);
-- A token passed where the purpose belongs is rejected without being echoed.
SELECT try(format('SELECT linktoken.redeem(%L, %L)', 'reset', linktoken.issue('reset', 'swap')));

-- Bad actions are refused at definition time.
CREATE SCHEMA app;
CREATE FUNCTION app.wrong_args(s text) RETURNS jsonb LANGUAGE sql SECURITY DEFINER SET search_path = app, pg_catalog, pg_temp AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION app.wrong_return(s text, p jsonb, f jsonb) RETURNS text LANGUAGE sql SECURITY DEFINER SET search_path = app, pg_catalog, pg_temp AS $$ SELECT 'x' $$;
CREATE FUNCTION app.invoker(s text, p jsonb, f jsonb) RETURNS jsonb LANGUAGE sql SET search_path = app, pg_catalog, pg_temp AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION app.unpinned(s text, p jsonb, f jsonb) RETURNS jsonb LANGUAGE sql SECURITY DEFINER AS $$ SELECT '{}'::jsonb $$;
CREATE PROCEDURE app.proc(s text, p jsonb, f jsonb) LANGUAGE sql AS $$ SELECT 1 $$;
SELECT try($$SELECT linktoken.define_purpose('x', '1 hour', action => 'app.wrong_args(text)')$$);
SELECT try($$SELECT linktoken.define_purpose('x', '1 hour', action => 'app.wrong_return(text,jsonb,jsonb)')$$);
SELECT try($$SELECT linktoken.define_purpose('x', '1 hour', action => 'app.invoker(text,jsonb,jsonb)')$$);
SELECT try($$SELECT linktoken.define_purpose('x', '1 hour', action => 'app.unpinned(text,jsonb,jsonb)')$$);
SELECT try($$SELECT linktoken.define_purpose('x', '1 hour', action => 'app.proc(text,jsonb,jsonb)')$$);
SELECT try($$SELECT linktoken.define_purpose('x', '1 hour', action => 'app.missing(text,jsonb,jsonb)')$$);
SELECT count(*) AS purposes_named_x FROM linktoken.purposes WHERE name = 'x';

-- The audit log is append-only.
SELECT try($$UPDATE linktoken.events SET subject = 'forged'$$);
SELECT try($$DELETE FROM linktoken.events$$);
SELECT try($$TRUNCATE linktoken.events$$);
