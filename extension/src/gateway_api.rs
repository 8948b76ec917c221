//! What the HTTP gateway calls. Its URLs carry only the token (`/t/{token}`), so these resolve
//! the purpose from the token itself and return the purpose's landing page with the status.
//! They share the lookup and the consuming UPDATE with peek and redeem.

use crate::audit;
use crate::errors::{self, raise, OrRaise};
use crate::found::{Bind, Found, Presented};
use crate::plans;
use crate::purpose;
use crate::tokens;
use crate::types::{GatewayRedeemRow, LandingRow, RawJsonb};
use linktoken_core::page::Page;
use linktoken_core::{input, Status};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn set_page(purpose: Option<&str>, page: Option<pgrx::JsonB>) {
    let page = input::required("page", page).or_raise();
    let page = Page::from_json(&page.0)
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, e.0));
    let normalized = serde_json::to_value(&page).expect("a page serializes");
    Spi::connect_mut(|client| {
        let purpose = purpose::load(client, purpose);
        plans::update(
            client,
            "UPDATE linktoken.purposes SET page = $2, updated_at = pg_catalog.now() WHERE name = $1",
            &[purpose.name.as_str().into(), pgrx::JsonB(normalized).into()],
        );
    });
}

/// The purpose a token was issued for (stored: from its row; sealed: from its claims).
fn purpose_of(client: &pgrx::spi::SpiClient<'_>, presented: &Presented) -> Option<String> {
    match presented {
        Presented::Malformed => None,
        Presented::Sealed(_, claims) => Some(claims.purpose.clone()),
        Presented::Stored(hash) => plans::select(
            client,
            "SELECT purpose FROM linktoken.tokens WHERE token_hash = $1",
            &[hash.as_slice().into()],
        )
        .next()
        .and_then(|row| row.get::<String>(1).or_raise()),
    }
}

fn page_of(client: &pgrx::spi::SpiClient<'_>, purpose: &str) -> Option<RawJsonb> {
    plans::select(
        client,
        "SELECT page FROM linktoken.purposes WHERE name = $1",
        &[purpose.into()],
    )
    .next()
    .and_then(|row| row.get::<RawJsonb>(1).or_raise())
}

#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_safe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn gateway_peek(token: Option<&str>, bind: default!(Option<&str>, "NULL")) -> LandingRow {
    let row = Spi::connect(|client| {
        let presented = tokens::present(client, token);
        let Some(purpose) =
            purpose_of(client, &presented).and_then(|n| purpose::try_load(client, &n))
        else {
            return (Status::Invalid, None, None, None);
        };
        let found: Found = tokens::lookup(client, &presented, &purpose, Bind::Presented(bind));
        let page = page_of(client, &purpose.name);
        (found.status, Some(purpose.name), page, found.uses_left)
    });
    LandingRow(vec![
        row.0.as_str().into_datum(),
        row.1.into_datum(),
        row.2.into_datum(),
        row.3.into_datum(),
    ])
}

#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn gateway_redeem(
    token: Option<&str>,
    form: default!(Option<RawJsonb>, "NULL"),
    bind: default!(Option<&str>, "NULL"),
) -> GatewayRedeemRow {
    let row = errors::passing_app_errors(|| {
        Spi::connect_mut(|client| {
            let presented = tokens::present(client, token);
            let Some(purpose) =
                purpose_of(client, &presented).and_then(|n| purpose::try_load(client, &n))
            else {
                audit::record(client, "rejected", Some(Status::Invalid), None, None, None);
                return (Status::Invalid, None, None, None);
            };
            let page = page_of(client, &purpose.name);
            // Check the submitted form against the page before consuming anything, but only for a
            // usable token: for a used or expired one the status is what the person needs to know.
            if tokens::lookup(client, &presented, &purpose, Bind::Presented(bind)).status
                == Status::Ok
            {
                let definition = page.map(|p| p.to_value()).unwrap_or_default();
                let page_def = Page::from_json(&definition).unwrap_or_default();
                let form_value = form.map(|f| f.to_value()).unwrap_or_default();
                let empty = serde_json::Map::new();
                if let Err(refused) = page_def.check_form(form_value.as_object().unwrap_or(&empty))
                {
                    raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, refused.0);
                }
            }
            let (status, _subject, _payload, result) =
                tokens::consume(client, &purpose, presented, form, Bind::Presented(bind));
            (status, Some(purpose.name), result, page)
        })
    });
    GatewayRedeemRow(vec![
        row.0.as_str().into_datum(),
        row.1.into_datum(),
        row.2.into_datum(),
        row.3.into_datum(),
    ])
}

/// For the gateway's `GET /code/{purpose}`: the purpose's page if the purpose has typed codes,
/// else NULL (the gateway answers 404). Reveals nothing about subjects.
#[pg_extern(stable, parallel_safe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn gateway_code_page(purpose: Option<&str>) -> Option<RawJsonb> {
    let name = purpose.filter(|p| input::purpose_name("purpose", p).is_ok())?;
    Spi::connect(|client| {
        plans::select(
            client,
            "SELECT page FROM linktoken.purposes WHERE name = $1 AND code_digits IS NOT NULL",
            &[name.into()],
        )
        .next()
        .and_then(|row| row.get::<RawJsonb>(1).or_raise())
    })
}
