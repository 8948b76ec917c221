//! Sealed (stateless) tokens: the claims travel inside the token, encrypted and authenticated
//! with XChaCha20-Poly1305, so issuing one writes nothing to the database.
//!
//! ```text
//! lts_<base64url( kid u32 BE || nonce 24 bytes || ciphertext+tag )>
//! plaintext = version 1 | expires_at i64 BE (Unix seconds) | len(purpose) u8 | purpose
//!           | len(subject) u16 BE | subject | payload (jsonb text, the rest)
//! associated data = "lts_" || kid
//! ```
//!
//! Nobody without the key can read the subject or payload from a link, and any change to any
//! byte (or a different key id) makes the token fail to open. Size: 4 + ceil((4 + 24 + 16 +
//! 12 + len(purpose) + len(subject) + len(payload)) * 4 / 3) characters, e.g. about 110 for
//! `unsubscribe` / `user:42` / `{}`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Prefix of every sealed token.
pub const PREFIX: &str = "lts_";
/// Key length in bytes.
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
const VERSION: u8 = 1;
/// Longest sealed token accepted (keeps a 1 MB garbage string from being decoded).
pub const MAX_LEN: usize = 8192;

/// What a sealed token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub purpose: String,
    pub subject: String,
    /// The payload as jsonb text, kept verbatim.
    pub payload: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Why a sealed token did not open. All of these are the status `invalid` to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsealed {
    NotSealed,
    Malformed,
    /// Decryption or authentication failed: tampered, or sealed under another key.
    Forged,
}

fn aad(kid: u32) -> [u8; 8] {
    let mut a = [0u8; 8];
    a[..4].copy_from_slice(PREFIX.as_bytes());
    a[4..].copy_from_slice(&kid.to_be_bytes());
    a
}

fn encode_claims(c: &Claims) -> Option<Vec<u8>> {
    let purpose = c.purpose.as_bytes();
    let subject = c.subject.as_bytes();
    let plen = u8::try_from(purpose.len()).ok()?;
    let slen = u16::try_from(subject.len()).ok()?;
    let mut out = Vec::with_capacity(12 + purpose.len() + subject.len() + c.payload.len());
    out.push(VERSION);
    out.extend_from_slice(&c.expires_at.to_be_bytes());
    out.push(plen);
    out.extend_from_slice(purpose);
    out.extend_from_slice(&slen.to_be_bytes());
    out.extend_from_slice(subject);
    out.extend_from_slice(c.payload.as_bytes());
    Some(out)
}

fn decode_claims(b: &[u8]) -> Option<Claims> {
    let (&version, rest) = b.split_first()?;
    if version != VERSION || rest.len() < 9 {
        return None;
    }
    let expires_at = i64::from_be_bytes(rest[..8].try_into().ok()?);
    let plen = rest[8] as usize;
    let rest = &rest[9..];
    let purpose = std::str::from_utf8(rest.get(..plen)?).ok()?.to_owned();
    let rest = &rest[plen..];
    let slen = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize;
    let rest = &rest[2..];
    let subject = std::str::from_utf8(rest.get(..slen)?).ok()?.to_owned();
    let payload = std::str::from_utf8(&rest[slen..]).ok()?.to_owned();
    Some(Claims {
        purpose,
        subject,
        payload,
        expires_at,
    })
}

/// Seals `claims` under key `kid`. None if the purpose (255 bytes) or subject (65535 bytes)
/// is too long, or the random number generator fails.
pub fn seal(key: &[u8; KEY_BYTES], kid: u32, claims: &Claims) -> Option<String> {
    let plain = encode_claims(claims)?;
    let mut nonce = [0u8; NONCE_BYTES];
    crate::token::fill_random(&mut nonce).ok()?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &aad(kid),
            },
        )
        .ok()?;
    let mut raw = Vec::with_capacity(4 + NONCE_BYTES + sealed.len());
    raw.extend_from_slice(&kid.to_be_bytes());
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&sealed);
    let mut out = String::from(PREFIX);
    URL_SAFE_NO_PAD.encode_string(&raw, &mut out);
    Some(out)
}

/// Is this a sealed token's shape? Returns its key id (no key needed yet).
pub fn key_id(text: &str) -> Result<u32, Unsealed> {
    let body = text.strip_prefix(PREFIX).ok_or(Unsealed::NotSealed)?;
    if text.len() > MAX_LEN || body.len() < ((4 + NONCE_BYTES + TAG_BYTES + 12) * 4).div_ceil(3) {
        return Err(Unsealed::Malformed);
    }
    let mut head = [0u8; 6];
    URL_SAFE_NO_PAD
        .decode_slice(&body.as_bytes()[..8], &mut head)
        .map_err(|_| Unsealed::Malformed)?;
    Ok(u32::from_be_bytes(head[..4].try_into().expect("4 bytes")))
}

/// Opens a sealed token with the key it names.
pub fn open(key: &[u8; KEY_BYTES], text: &str) -> Result<Claims, Unsealed> {
    let kid = key_id(text)?;
    let raw = URL_SAFE_NO_PAD
        .decode(&text.as_bytes()[PREFIX.len()..])
        .map_err(|_| Unsealed::Malformed)?;
    if raw.len() < 4 + NONCE_BYTES + TAG_BYTES {
        return Err(Unsealed::Malformed);
    }
    let (nonce, sealed) = raw[4..].split_at(NONCE_BYTES);
    let cipher = XChaCha20Poly1305::new(key.into());
    let plain = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad(kid),
            },
        )
        .map_err(|_| Unsealed::Forged)?;
    decode_claims(&plain).ok_or(Unsealed::Forged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            purpose: "unsubscribe".into(),
            subject: "user:42".into(),
            payload: r#"{"list": 7, "n": 123456789012345678901234567890}"#.into(),
            expires_at: 1_900_000_000,
        }
    }

    fn key(b: u8) -> [u8; KEY_BYTES] {
        [b; KEY_BYTES]
    }

    #[test]
    fn round_trip_url_safe_and_unreadable() {
        let t = seal(&key(1), 7, &claims()).unwrap();
        assert!(t.starts_with("lts_"));
        assert!(t[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(key_id(&t), Ok(7));
        assert_eq!(open(&key(1), &t), Ok(claims()));
        let raw = URL_SAFE_NO_PAD.decode(&t[4..]).unwrap();
        let as_text = String::from_utf8_lossy(&raw);
        assert!(!as_text.contains("user:42") && !as_text.contains("unsubscribe"));
        assert!(t.len() < 200, "{} chars", t.len());
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let t = seal(&key(1), 7, &claims()).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&t[4..]).unwrap();
        for i in 0..raw.len() * 8 {
            let mut r = raw.clone();
            r[i / 8] ^= 1 << (i % 8);
            let forged = format!("lts_{}", URL_SAFE_NO_PAD.encode(&r));
            assert!(open(&key(1), &forged).is_err(), "bit {i}");
        }
    }

    #[test]
    fn other_key_and_garbage_are_rejected() {
        let t = seal(&key(1), 7, &claims()).unwrap();
        assert_eq!(open(&key(2), &t), Err(Unsealed::Forged));
        assert_eq!(key_id("ltk_abc"), Err(Unsealed::NotSealed));
        assert_eq!(key_id("lts_"), Err(Unsealed::Malformed));
        assert_eq!(
            key_id(&format!("lts_{}", "A".repeat(10_000))),
            Err(Unsealed::Malformed)
        );
        assert!(open(&key(1), &format!("{}!", &t)).is_err());
        assert!(open(&key(1), &t[..t.len() - 2]).is_err());
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(seal(&key(1), 1, &claims()), seal(&key(1), 1, &claims()));
    }
}
