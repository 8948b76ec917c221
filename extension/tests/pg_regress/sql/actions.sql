-- Actions: the app's function that redeem runs in the same transaction.
CREATE ROLE regress_app_owner NOLOGIN;
CREATE SCHEMA shop AUTHORIZATION regress_app_owner;
CREATE TABLE shop.users (id int PRIMARY KEY, email text, verified boolean DEFAULT false, password text);
ALTER TABLE shop.users OWNER TO regress_app_owner;
INSERT INTO shop.users (id, email) VALUES (1, 'anna@example.org'), (2, 'ben@example.org');

SET ROLE regress_app_owner;
CREATE FUNCTION shop.verify(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = shop, pg_catalog, pg_temp AS $$
BEGIN
    UPDATE shop.users SET verified = true WHERE id = subject::int;
    RETURN jsonb_build_object('verified', subject, 'ran_as', current_user, 'form', form, 'list', payload->'list');
END
$$;
CREATE FUNCTION shop.set_password(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = shop, pg_catalog, pg_temp AS $$
BEGIN
    IF coalesce(length(form->>'password'), 0) < 12 THEN
        RAISE EXCEPTION 'password must be at least 12 characters' USING ERRCODE = '22023';
    END IF;
    UPDATE shop.users SET password = md5(form->>'password') WHERE id = subject::int;
    RETURN NULL;
END
$$;
RESET ROLE;

SELECT linktoken.define_purpose('verify_email', '1 day', action => 'shop.verify(text,jsonb,jsonb)');
SELECT linktoken.define_purpose('reset', '1 hour', action => 'shop.set_password(text,jsonb,jsonb)');
SELECT name, action FROM linktoken.purposes WHERE name IN ('verify_email', 'reset') ORDER BY name;

-- The action runs as its owner, gets subject, payload and form, and its result comes back.
SELECT linktoken.issue('verify_email', '1', '{"list": 3}') AS v \gset
SELECT status, subject, result FROM linktoken.redeem(:'v', 'verify_email', '{"ok": true}');
SELECT id, verified FROM shop.users ORDER BY id;
-- A rejected redeem does not run the action.
UPDATE shop.users SET verified = false;
SELECT status, result FROM linktoken.redeem(:'v', 'verify_email');
SELECT id, verified FROM shop.users ORDER BY id;

-- An action that raises: the caller gets its error, the token stays usable, no state changed.
SELECT linktoken.issue('reset', '2') AS r \gset
\set VERBOSITY sqlstate
SELECT * FROM linktoken.redeem(:'r', 'reset', '{"password": "short"}');
\set VERBOSITY default
SELECT * FROM linktoken.redeem(:'r', 'reset', '{"password": "short"}');
SELECT * FROM linktoken.redeem(:'r', 'reset');
SELECT status, uses_left FROM linktoken.peek(:'r', 'reset');
SELECT use_count, consumed_at FROM linktoken.tokens WHERE purpose = 'reset' AND subject = '2';
SELECT password IS NULL AS unchanged FROM shop.users WHERE id = 2;
-- ... and then a good form succeeds once.
SELECT status, result FROM linktoken.redeem(:'r', 'reset', '{"password": "correct horse battery"}');
SELECT password = md5('correct horse battery') AS changed FROM shop.users WHERE id = 2;
SELECT status FROM linktoken.redeem(:'r', 'reset', '{"password": "correct horse battery"}');

-- The error fails the caller's whole transaction too (nothing half done).
BEGIN;
SELECT linktoken.issue('reset', '1') AS r2 \gset
SAVEPOINT s;
SELECT * FROM linktoken.redeem(:'r2', 'reset', '{"password": "x"}');
ROLLBACK TO SAVEPOINT s;
SELECT status FROM linktoken.peek(:'r2', 'reset');
COMMIT;

-- If an action later stops being SECURITY DEFINER, redeem refuses to run it as the extension owner.
ALTER FUNCTION shop.verify(text, jsonb, jsonb) SECURITY INVOKER;
SELECT linktoken.issue('verify_email', '2') AS v2 \gset
SELECT * FROM linktoken.redeem(:'v2', 'verify_email');
SELECT status FROM linktoken.peek(:'v2', 'verify_email');
ALTER FUNCTION shop.verify(text, jsonb, jsonb) SECURITY DEFINER;
-- ... and likewise if its search_path is no longer pinned.
ALTER FUNCTION shop.verify(text, jsonb, jsonb) RESET search_path;
SELECT * FROM linktoken.redeem(:'v2', 'verify_email');
SELECT status FROM linktoken.peek(:'v2', 'verify_email');
ALTER FUNCTION shop.verify(text, jsonb, jsonb) SET search_path = shop, pg_catalog, pg_temp;

-- If an action is dropped, redeem says so and consumes nothing.
DROP FUNCTION shop.verify(text, jsonb, jsonb);
SELECT * FROM linktoken.redeem(:'v2', 'verify_email');
SELECT status FROM linktoken.peek(:'v2', 'verify_email');
-- Removing the action (NULL) makes plain redemption work again.
SELECT linktoken.define_purpose('verify_email', '1 day', action => NULL);
SELECT status, result FROM linktoken.redeem(:'v2', 'verify_email');

-- Leave no purpose pointing at a function that is about to be dropped.
SELECT linktoken.define_purpose('reset', '1 hour', action => NULL);
DROP SCHEMA shop CASCADE;
DROP ROLE regress_app_owner;
