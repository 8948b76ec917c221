//! What the HTTP gateway calls. Its URLs carry only the token (`/t/{token}`), so these resolve
//! the purpose from the token itself and return the purpose's landing page with the status.
//! They share the lookup and the consuming UPDATE with peek and redeem.

use crate::audit;
use crate::errors::{raise, OrRaise};
use crate::purpose;
use crate::tokens::{self, Found};
use crate::types::RawJsonb;
use linktoken_core::page::Page;
use linktoken_core::{input, token, Status};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn set_page(purpose: Option<&str>, page: Option<pgrx::JsonB>) {
    let page = input::required("page", page).or_raise();
    let page = Page::from_json(&page.0)
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, e.0));
    let normalized = serde_json::to_value(&page).expect("a page serializes");
    Spi::connect_mut(|client| {
        let purpose = purpose::load(client, purpose);
        client
            .update(
                "UPDATE linktoken.purposes SET page = $2, updated_at = pg_catalog.now() WHERE name = $1",
                None,
                &[purpose.name.as_str().into(), pgrx::JsonB(normalized).into()],
            )
            .or_raise();
    });
}

/// The purpose a token was issued for, if the token exists.
fn purpose_of(client: &pgrx::spi::SpiClient<'_>, hash: &token::TokenHash) -> Option<String> {
    client
        .select(
            "SELECT purpose FROM linktoken.tokens WHERE token_hash = $1",
            Some(1),
            &[hash.as_slice().into()],
        )
        .or_raise()
        .next()
        .and_then(|row| row.get::<String>(1).or_raise())
}

fn page_of(client: &pgrx::spi::SpiClient<'_>, purpose: &str) -> Option<RawJsonb> {
    client
        .select(
            "SELECT page FROM linktoken.purposes WHERE name = $1",
            Some(1),
            &[purpose.into()],
        )
        .or_raise()
        .first()
        .get_one::<RawJsonb>()
        .or_raise()
}

#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_safe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn gateway_peek(
    token: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(status, String),
        name!(purpose, Option<String>),
        name!(page, Option<RawJsonb>),
        name!(uses_left, Option<i32>),
    ),
> {
    let row = Spi::connect(|client| {
        let Some(hash) = token.and_then(|t| token::parse(t).ok()) else {
            return (Status::Invalid, None, None, None);
        };
        let Some(purpose) = purpose_of(client, &hash) else {
            return (Status::Invalid, None, None, None);
        };
        let found: Found = tokens::lookup(client, &hash, &purpose);
        let page = page_of(client, &purpose);
        (found.status, Some(purpose), page, found.uses_left)
    });
    TableIterator::once((row.0.as_str().to_owned(), row.1, row.2, row.3))
}

#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(@extschema@, pg_catalog, pg_temp)]
pub fn gateway_redeem(
    token: Option<&str>,
    form: default!(Option<RawJsonb>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(status, String),
        name!(purpose, Option<String>),
        name!(result, Option<RawJsonb>),
        name!(page, Option<RawJsonb>),
    ),
> {
    let row = Spi::connect_mut(|client| {
        let hash = token.and_then(|t| token::parse(t).ok());
        let Some(name) = hash.as_ref().and_then(|h| purpose_of(client, h)) else {
            audit::record(client, "rejected", Some(Status::Invalid), None, None, None);
            return (Status::Invalid, None, None, None);
        };
        let purpose = purpose::load(client, Some(&name));
        let page = page_of(client, &name);
        // Check the submitted form against the page before consuming anything, but only for a
        // usable token: for a used or expired one the status is what the person needs to know.
        if tokens::lookup(client, hash.as_ref().expect("parsed"), &name).status == Status::Ok {
            let definition = page.map(|p| p.to_value()).unwrap_or_default();
            let page_def = Page::from_json(&definition).unwrap_or_default();
            let form_value = form.map(|f| f.to_value()).unwrap_or_default();
            let empty = serde_json::Map::new();
            if let Err(refused) = page_def.check_form(form_value.as_object().unwrap_or(&empty)) {
                raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, refused.0);
            }
        }
        let (status, _subject, _payload, result) = tokens::consume(client, &purpose, hash, form);
        (status, Some(name), result, page)
    });
    TableIterator::once((row.0.as_str().to_owned(), row.1, row.2, row.3))
}
