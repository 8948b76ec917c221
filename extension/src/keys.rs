//! The sealing keys in linktoken.keys: the secret of sealed tokens and the key of typed codes'
//! hashes. rotate_key() makes a new current key; retire_key() retires one (its sealed tokens
//! become `invalid`).

use crate::errors::{raise, OrRaise};
use crate::plans;
use linktoken_core::{input, sealed, token};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::PgSqlErrorCode;

/// The key with id `kid`, if it exists and is not retired.
pub fn key(client: &SpiClient<'_>, kid: u32) -> Option<[u8; sealed::KEY_BYTES]> {
    let kid = i32::try_from(kid).ok()?;
    // An unknown or retired key id is simply no key (the token is then `invalid`).
    let row = plans::select(
        client,
        "SELECT secret FROM linktoken.keys WHERE kid = $1 AND retired_at IS NULL",
        &[kid.into()],
    )
    .next()?;
    let secret: Vec<u8> = row.get(1).or_raise()?;
    secret.try_into().ok()
}

/// The current sealing key (newest not retired), made on first use.
pub fn current_key(client: &mut SpiClient<'_>) -> (u32, [u8; sealed::KEY_BYTES]) {
    let row = plans::select(
        client,
        "SELECT kid, secret FROM linktoken.keys WHERE retired_at IS NULL ORDER BY kid DESC LIMIT 1",
        &[],
    )
    .next()
    .map(|r| {
        (
            r.get::<i32>(1).or_raise().expect("kid"),
            r.get::<Vec<u8>>(2).or_raise().expect("secret"),
        )
    });
    let (kid, secret) = match row {
        Some(found) => found,
        None => new_key(client),
    };
    (
        u32::try_from(kid).expect("positive kid"),
        secret.try_into().expect("32-byte key"),
    )
}

fn new_key(client: &mut SpiClient<'_>) -> (i32, Vec<u8>) {
    let mut secret = [0u8; sealed::KEY_BYTES];
    token::fill_random(&mut secret)
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_SYSTEM_ERROR, e.to_string()));
    let kid = plans::update(
        client,
        "INSERT INTO linktoken.keys (secret) VALUES ($1) RETURNING kid",
        &[secret.as_slice().into()],
    )
    .first()
    .get_one::<i32>()
    .or_raise()
    .expect("kid");
    (kid, secret.to_vec())
}

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn rotate_key() -> i32 {
    Spi::connect_mut(|client| new_key(client).0)
}

#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
pub fn retire_key(kid: Option<i32>) -> bool {
    let kid = input::required("kid", kid).or_raise();
    Spi::connect_mut(|client| {
        let retired = plans::update(
            client,
            "UPDATE linktoken.keys SET retired_at = pg_catalog.now() WHERE kid = $1 AND retired_at IS NULL RETURNING 1",
            &[kid.into()],
        );
        !retired.is_empty()
    })
}
