//! "Enter your email" -> mail -> link: request(), which resolves what a person typed through the
//! app's resolver, issues the purpose's token (and code) for a known identifier and puts one
//! message into linktoken.outbox, sealed to the mailer's key; set_mailer_key(); and
//! gateway_request_page() for the gateway's form.
//!
//! request() answers the same for every identifier: nothing, no error, whether it is known,
//! unknown, throttled (min_interval) or over its per-identifier cap. What happened is in the
//! audit log ('requested' events), by subject when the identifier is known and by a hash of it
//! when it is not.

use crate::audit;
use crate::definer;
use crate::errors::{self, raise, raise_with_hint, OrRaise};
use crate::gucs;
use crate::plans;
use crate::purpose::{self, Purpose};
use crate::stored;
use crate::types::RawJsonb;
use linktoken_core::input;
use linktoken_core::mailbox::{self, Secret};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::PgSqlErrorCode;
use std::num::NonZeroUsize;

/// Counts one request for the identifier within the current window; returns the count.
fn count_request(client: &mut SpiClient<'_>, key: &[u8; 32]) -> i32 {
    let window = gucs::REQUEST_WINDOW_SECONDS.get();
    plans::update(
        client,
        "INSERT INTO linktoken.request_counts AS r (request_key, requests, window_until) \
         VALUES ($1, 1, pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $2)) \
         ON CONFLICT (request_key) DO UPDATE SET \
           requests = CASE WHEN r.window_until > pg_catalog.clock_timestamp() THEN r.requests + 1 ELSE 1 END, \
           window_until = CASE WHEN r.window_until > pg_catalog.clock_timestamp() THEN r.window_until \
                               ELSE pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $2) END \
         RETURNING requests",
        &[key.as_slice().into(), f64::from(window).into()],
    )
    .first()
    .get_one::<i32>()
    .or_raise()
    .unwrap_or(i32::MAX)
}

/// The current mailer key: (public key, fingerprint).
fn mailer_key(client: &SpiClient<'_>) -> Option<(Vec<u8>, Vec<u8>)> {
    let row = plans::select(
        client,
        "SELECT public_key, fingerprint FROM linktoken.mailer_keys \
         WHERE retired_at IS NULL ORDER BY kid DESC LIMIT 1",
        &[],
    )
    .next()?;
    Some((row.get(1).or_raise()?, row.get(2).or_raise()?))
}

/// What the resolver says of an identifier: (subject, address), None for nobody.
fn resolve(
    client: &SpiClient<'_>,
    purpose: &Purpose,
    resolver: pg_sys::Oid,
    identifier: &str,
) -> Option<(String, String)> {
    // Something no person types (too long, control characters) is nobody, without asking.
    if identifier.trim().is_empty() || input::subject("identifier", identifier).is_err() {
        return None;
    }
    definer::recheck(client, resolver, &definer::RESOLVER, &purpose.name);
    let datum = definer::call(resolver, &[identifier.into_datum()])?;
    // SAFETY: the resolver returns a record of (subject text, address text), checked by
    // definer::check and recheck.
    let row = unsafe { PgHeapTuple::from_composite_datum(datum) };
    let column = |n: usize| {
        row.get_by_index::<String>(NonZeroUsize::new(n).expect("1 or 2"))
            .ok()
            .flatten()
            .filter(|v| !v.trim().is_empty())
    };
    let (subject, address) = (column(1)?, column(2)?);
    if input::subject("subject", &subject).is_err() || address.chars().any(char::is_control) {
        raise_with_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "the resolver of purpose \"{}\" returned a subject or address linktoken cannot use",
                purpose.name
            ),
            "A subject is 1 to 1024 bytes without control characters; an address has no control characters.",
        );
    }
    Some((subject, address))
}

/// Records what became of a request.
fn record(
    client: &mut SpiClient<'_>,
    purpose: &Purpose,
    outcome: &str,
    subject: Option<&str>,
    key: &[u8; 32],
) {
    let (ip, user_agent) = audit::client();
    plans::update(
        client,
        "INSERT INTO linktoken.events (event, status, purpose, subject, client_ip, user_agent, detail) \
         VALUES ('requested', $1, $2, $3, $4, $5, \
                 CASE WHEN $3 IS NULL THEN pg_catalog.jsonb_build_object('request_key', pg_catalog.encode($6, 'hex')) END)",
        &[
            outcome.into(),
            purpose.name.as_str().into(),
            subject.into(),
            ip.into(),
            user_agent.into(),
            key.as_slice().into(),
        ],
    );
}

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn request(
    purpose: Option<&str>,
    identifier: Option<&str>,
    bind: default!(Option<&str>, "NULL"),
) {
    errors::passing_app_errors(|| {
        Spi::connect_mut(|client| {
            // Everything that can fail for a reason other than the identifier fails first, the
            // same way for every identifier.
            let purpose = purpose::load(client, purpose);
            let Some(resolver) = purpose.resolver else {
                raise_with_hint(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("purpose \"{}\" has no resolver", purpose.name),
                    "Define it with resolver => 'app.find_user(text)': a SECURITY DEFINER function (identifier text, OUT subject text, OUT address text).",
                )
            };
            if purpose.bind_browser {
                let value = input::required("bind", bind).or_raise();
                input::bind_value("bind", value).or_raise();
            }
            let Some((public_key, fingerprint)) = mailer_key(client) else {
                raise_with_hint(
                    PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "no mailer key is set: request() cannot seal the message",
                    "Run `linktoken-gateway mailer keygen --key-file F` and, as the owner, SELECT linktoken.set_mailer_key(decode('<F.pub>', 'hex')).",
                )
            };
            let identifier = identifier.unwrap_or("");
            let key = input::identifier_key(&purpose.name, identifier);
            if count_request(client, &key) > gucs::REQUESTS_PER_IDENTIFIER.get() {
                return record(client, &purpose, "capped", None, &key);
            }
            let Some((subject, address)) = resolve(client, &purpose, resolver, identifier) else {
                return record(client, &purpose, "unknown", None, &key);
            };
            let bind = bind.filter(|_| purpose.bind_browser);
            let with_code = purpose.code_digits.is_some();
            let Ok((token, code)) =
                stored::issue_for(client, &purpose, &subject, None, None, bind, with_code)
            else {
                // min_interval: nothing sent, silently.
                return record(client, &purpose, "throttled", Some(&subject), &key);
            };
            let sealed = mailbox::seal(&public_key, &Secret { token, code })
                .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_SYSTEM_ERROR, e.to_string()));
            plans::update(
                client,
                "WITH m AS ( \
                   INSERT INTO linktoken.outbox (purpose, address, expires_at, one_click, mail_subject, key_fingerprint, sealed) \
                   SELECT $1, $2, pg_catalog.now() + $3, \
                          COALESCE((p.page->>'one_click')::boolean, false), \
                          COALESCE(p.page->>'mail_subject', p.page->>'title', $1), \
                          $4, $5 \
                   FROM (SELECT (SELECT page FROM linktoken.purposes WHERE name = $1) AS page) p \
                   RETURNING id) \
                 SELECT pg_catalog.pg_notify('linktoken_outbox', m.id::text) FROM m",
                &[
                    purpose.name.as_str().into(),
                    address.as_str().into(),
                    purpose.ttl.into(),
                    fingerprint.as_slice().into(),
                    sealed.as_slice().into(),
                ],
            );
            record(client, &purpose, "sent", Some(&subject), &key);
        })
    });
}

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn set_mailer_key(public_key: Option<&[u8]>) -> i32 {
    let public_key = input::required("public_key", public_key).or_raise();
    if public_key.len() != mailbox::KEY_BYTES {
        raise_with_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "public_key must be {} bytes (an X25519 public key), not {}",
                mailbox::KEY_BYTES,
                public_key.len()
            ),
            "Pass the hex from the .pub file that `linktoken-gateway mailer keygen` wrote: decode('<hex>', 'hex').",
        );
    }
    let fingerprint = mailbox::fingerprint(public_key);
    Spi::connect_mut(|client| {
        plans::update(
            client,
            "WITH k AS ( \
               INSERT INTO linktoken.mailer_keys (public_key, fingerprint) VALUES ($1, $2) \
               ON CONFLICT (public_key) DO UPDATE SET retired_at = NULL \
               RETURNING kid), \
             r AS (UPDATE linktoken.mailer_keys SET retired_at = pg_catalog.now() \
                   WHERE public_key <> $1 AND retired_at IS NULL) \
             SELECT kid FROM k",
            &[public_key.into(), fingerprint.as_slice().into()],
        )
        .first()
        .get_one::<i32>()
        .or_raise()
        .expect("a key id")
    })
}

/// For the gateway's `GET /request/{purpose}`: the purpose's page if the purpose has a
/// resolver, else NULL (the gateway answers 404). Reveals nothing about identifiers.
#[pg_extern(stable, parallel_safe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn gateway_request_page(purpose: Option<&str>) -> Option<RawJsonb> {
    let name = purpose.filter(|p| input::purpose_name("purpose", p).is_ok())?;
    Spi::connect(|client| {
        plans::select(
            client,
            "SELECT page FROM linktoken.purposes WHERE name = $1 AND resolver IS NOT NULL",
            &[name.into()],
        )
        .next()
        .and_then(|row| row.get::<RawJsonb>(1).or_raise())
    })
}
