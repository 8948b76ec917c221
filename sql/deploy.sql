-- Deployment template: run once per database as a superuser (psql -v app_password=... -v gateway_password=... -v mailer_password=... -f sql/deploy.sql).
-- CREATE EXTENSION creates the NOLOGIN roles linktoken_issuer, linktoken_gateway and linktoken_mailer; the login
-- roles below are the ones your application and the gateway connect as.
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS linktoken;

-- The application issues tokens (and may peek or revoke them), e.g. from its "send me a link" handler.
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'linktoken_app') AS create_app \gset
\if :create_app
    CREATE ROLE linktoken_app LOGIN IN ROLE linktoken_issuer;
\endif
-- The gateway only peeks and redeems.
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'linktoken_web') AS create_web \gset
\if :create_web
    CREATE ROLE linktoken_web LOGIN IN ROLE linktoken_gateway;
\endif
-- The mailer (linktoken-gateway mailer) reads linktoken.outbox and marks messages sent.
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'linktoken_mail') AS create_mail \gset
\if :create_mail
    CREATE ROLE linktoken_mail LOGIN IN ROLE linktoken_mailer;
\endif
\if :{?mailer_password}
    ALTER ROLE linktoken_mail PASSWORD :'mailer_password';
\endif
\if :{?app_password}
    ALTER ROLE linktoken_app PASSWORD :'app_password';
\endif
\if :{?gateway_password}
    ALTER ROLE linktoken_web PASSWORD :'gateway_password';
\endif
-- Keep failing statements' text out of the server log for these roles, in case a client ever
-- puts a token into SQL text instead of a bind parameter.
ALTER ROLE linktoken_app SET log_min_error_statement = panic;
ALTER ROLE linktoken_web SET log_min_error_statement = panic;
ALTER ROLE linktoken_mail SET log_min_error_statement = panic;
