-- The five flows people build with email links, as an example application schema `app`.
-- Run as a superuser in a database with the linktoken extension (scripts/demo.sh does).
-- Every action is SECURITY DEFINER, owned by the NOLOGIN role demo_app, so it runs with that
-- role's privileges (never the extension owner's), with a pinned search_path that names only
-- schemas nobody else may create objects in (linktoken refuses anything else): `app`, owned by
-- demo_app, and pg_catalog. pgcrypto lives in its own schema `crypto`, owned by the superuser
-- and called by qualified names.
\set ON_ERROR_STOP on
CREATE SCHEMA IF NOT EXISTS crypto;
CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA crypto;
SELECT n.nspname <> 'crypto' AS move_pgcrypto FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pgcrypto' \gset
\if :move_pgcrypto
    ALTER EXTENSION pgcrypto SET SCHEMA crypto;
\endif

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_app') AS create_role \gset
\if :create_role
    CREATE ROLE demo_app NOLOGIN;
\endif
DROP SCHEMA IF EXISTS app CASCADE;
CREATE SCHEMA app AUTHORIZATION demo_app;
GRANT USAGE ON SCHEMA crypto TO demo_app;
-- The reset action changes password_hash, which fires revoke_on_change (SECURITY INVOKER): the
-- role doing that UPDATE must be allowed to revoke, that is a member of linktoken_issuer.
GRANT linktoken_issuer TO demo_app;
SET ROLE demo_app;

CREATE TABLE app.users (
    id              int PRIMARY KEY,
    email           text NOT NULL UNIQUE,
    email_verified  boolean NOT NULL DEFAULT false,
    password_hash   text,
    subscribed      boolean NOT NULL DEFAULT true
);
CREATE TABLE app.sessions (
    id         text PRIMARY KEY,               -- random, 256 bits
    user_id    int NOT NULL REFERENCES app.users,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
-- Questionnaires are assigned by a clinician; the link's subject is the assignment, so neither
-- the link nor the token carries a patient id.
CREATE TABLE app.assignments (
    id          text PRIMARY KEY,              -- random
    patient_id  int NOT NULL,
    clinician   text NOT NULL,
    questionnaire text NOT NULL DEFAULT 'phq9'
);
CREATE TABLE app.phq9_responses (
    assignment_id text PRIMARY KEY REFERENCES app.assignments,
    answers       jsonb NOT NULL,
    score         int NOT NULL,
    submitted_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO app.users (id, email) VALUES (42, 'anna@example.org'), (43, 'ben@example.org');
INSERT INTO app.assignments (id, patient_id, clinician)
VALUES (encode(crypto.gen_random_bytes(16), 'hex'), 42, 'Dr. Rivera');

-- The request forms (/request/{purpose}: "enter your email"): what a person types is mapped to
-- a user by this resolver, run by linktoken.request as demo_app with only that text. Unknown
-- addresses get no mail, and the form answers the same.
CREATE FUNCTION app.find_user(identifier text, OUT subject text, OUT address text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = app, pg_catalog, pg_temp AS $$
    SELECT u.id::text, u.email FROM app.users u WHERE lower(u.email) = lower(btrim(identifier))
$$;

-- 1. Email address verification.
CREATE FUNCTION app.verify_email(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = app, pg_catalog, pg_temp AS $$
BEGIN
    UPDATE app.users SET email_verified = true WHERE id = subject::int AND email = payload->>'email';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'This address has changed since the link was sent.' USING ERRCODE = 'P0001';
    END IF;
    RETURN NULL;
END
$$;

-- 2. Password reset: new password twice, at least 12 characters, stored as a bcrypt hash;
--    the user's sessions end, and (through the trigger below) every outstanding reset and
--    sign-in link of the user.
CREATE FUNCTION app.reset_password(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = app, pg_catalog, pg_temp AS $$
DECLARE
    pw text := coalesce(form->>'password', '');
BEGIN
    IF length(pw) < 12 THEN
        RAISE EXCEPTION 'The password must be at least 12 characters long.' USING ERRCODE = '22023';
    END IF;
    IF pw IS DISTINCT FROM form->>'password2' THEN
        RAISE EXCEPTION 'The two passwords do not match.' USING ERRCODE = '22023';
    END IF;
    UPDATE app.users SET password_hash = crypto.crypt(pw, crypto.gen_salt('bf', 10)) WHERE id = subject::int;
    DELETE FROM app.sessions WHERE user_id = subject::int;
    RETURN NULL;
END
$$;

-- 3. Magic sign-in: a new session, handed to the gateway as a cookie.
CREATE FUNCTION app.sign_in(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = app, pg_catalog, pg_temp AS $$
DECLARE
    sid text := encode(crypto.gen_random_bytes(32), 'hex');
BEGIN
    INSERT INTO app.sessions (id, user_id, expires_at) VALUES (sid, subject::int, now() + interval '8 hours');
    RETURN jsonb_build_object('session', jsonb_build_object('name', 'demo_session', 'value', sid, 'max_age', 8 * 3600));
END
$$;

-- 4. Newsletter unsubscribe (unlimited uses; RFC 8058 one-click).
CREATE FUNCTION app.unsubscribe(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = app, pg_catalog, pg_temp AS $$
BEGIN
    UPDATE app.users SET subscribed = false WHERE id = subject::int;
    RETURN NULL;
END
$$;

-- 5. PHQ-9 questionnaire: nine answers 0-3, stored with the score; consumed only on submit.
CREATE FUNCTION app.store_phq9(subject text, payload jsonb, form jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = app, pg_catalog, pg_temp AS $$
DECLARE
    answers jsonb := '{}';
    score int := 0;
    v int;
BEGIN
    FOR i IN 1..9 LOOP
        v := (form->>('q' || i))::int;
        IF v IS NULL OR v NOT BETWEEN 0 AND 3 THEN
            RAISE EXCEPTION 'Please answer question %.', i USING ERRCODE = '22023';
        END IF;
        answers := answers || jsonb_build_object('q' || i, v);
        score := score + v;
    END LOOP;
    INSERT INTO app.phq9_responses (assignment_id, answers, score) VALUES (subject, answers, score);
    RETURN NULL;
END
$$;
RESET ROLE;

-- A changed password or email address ends the user's outstanding reset and sign-in links,
-- whoever changes it (the reset action, a settings page, an administrator).
CREATE TRIGGER users_revoke_links AFTER UPDATE OF password_hash, email ON app.users
    FOR EACH ROW EXECUTE FUNCTION linktoken.revoke_on_change('id', 'password_reset', 'magic_login');

SELECT linktoken.define_purpose('verify_email', '24 hours', action => 'app.verify_email(text,jsonb,jsonb)',
                                resolver => 'app.find_user(text)');
SELECT linktoken.set_page('verify_email', '{
  "title": "Confirm your email address",
  "text": "Confirm that this address belongs to you.",
  "button": "Confirm my address",
  "confirm_label": "Yes, this is my email address",
  "identifier_label": "Your email address",
  "request_text": "We will email a new confirmation link to this address.",
  "mail_subject": "Confirm your email address",
  "success_title": "Address confirmed",
  "success_text": "Thank you. Your email address is confirmed."
}');

SELECT linktoken.define_purpose('password_reset', '1 hour', action => 'app.reset_password(text,jsonb,jsonb)',
                                resolver => 'app.find_user(text)');
SELECT linktoken.set_page('password_reset', '{
  "title": "Choose a new password",
  "text": "Enter your new password twice. It must be at least 12 characters long.",
  "identifier_label": "Your email address",
  "request_text": "We will email you a link to choose a new password.",
  "mail_subject": "Reset your password",
  "button": "Set new password",
  "fields": [
    {"name": "password", "type": "password", "label": "New password", "required": true, "minlength": 12},
    {"name": "password2", "type": "password", "label": "New password again", "required": true, "minlength": 12, "same_as": "password"}
  ],
  "success_title": "Password changed",
  "success_text": "Your password is changed and you were signed out everywhere else."
}');

-- Sign-in links work only in the browser that asked for them (the app sets a random
-- linktoken_bind cookie there and passes its value to issue_with_code); on any other device the
-- 6-digit code from the same email signs in. At most one sign-in email per user every 30 seconds.
SELECT linktoken.define_purpose('magic_login', '15 minutes', action => 'app.sign_in(text,jsonb,jsonb)',
                                min_interval => '30 seconds', code_digits => 6, max_attempts => 5,
                                bind_browser => true, resolver => 'app.find_user(text)');
SELECT linktoken.set_page('magic_login', '{
  "title": "Sign in",
  "text": "You asked to sign in with a link sent to your email address.",
  "button": "Sign me in",
  "confirm_label": "Yes, sign me in on this device",
  "subject_label": "Your user number",
  "identifier_label": "Your email address",
  "request_text": "We will email you a link that signs you in, and a code for other devices.",
  "mail_subject": "Your sign-in link",
  "success_title": "You are signed in",
  "success_text": "You can close this page and continue."
}');

SELECT linktoken.define_purpose('newsletter_unsubscribe', '3 years', max_uses => NULL, revoke_previous => false,
                                action => 'app.unsubscribe(text,jsonb,jsonb)');
SELECT linktoken.set_page('newsletter_unsubscribe', '{
  "title": "Unsubscribe from the newsletter",
  "text": "You will no longer receive the weekly newsletter.",
  "button": "Unsubscribe",
  "confirm_label": "Yes, unsubscribe me",
  "one_click": true,
  "success_title": "You are unsubscribed",
  "success_text": "You will not receive the newsletter any more."
}');

SELECT linktoken.define_purpose('phq9', '7 days', action => 'app.store_phq9(text,jsonb,jsonb)');
SELECT linktoken.set_page('phq9', jsonb_build_object(
  'title', 'Weekly questionnaire (PHQ-9)',
  'text', 'Over the last 2 weeks, how often have you been bothered by any of the following problems?',
  'button', 'Send my answers',
  'success_title', 'Thank you',
  'success_text', 'Your answers were sent to your clinician.',
  'fields', (
    SELECT jsonb_agg(jsonb_build_object(
             'name', 'q' || n, 'type', 'radio', 'label', n || '. ' || q, 'required', true,
             'options', '[{"value": "0", "label": "Not at all"}, {"value": "1", "label": "Several days"},
                          {"value": "2", "label": "More than half the days"}, {"value": "3", "label": "Nearly every day"}]'::jsonb)
           ORDER BY n)
    FROM unnest(ARRAY[
      'Little interest or pleasure in doing things',
      'Feeling down, depressed, or hopeless',
      'Trouble falling or staying asleep, or sleeping too much',
      'Feeling tired or having little energy',
      'Poor appetite or overeating',
      'Feeling bad about yourself — or that you are a failure or have let yourself or your family down',
      'Trouble concentrating on things, such as reading the newspaper or watching television',
      'Moving or speaking so slowly that other people could have noticed, or the opposite — being so fidgety or restless that you have been moving around a lot more than usual',
      'Thoughts that you would be better off dead, or of hurting yourself in some way'
    ]) WITH ORDINALITY AS t(q, n))
));
