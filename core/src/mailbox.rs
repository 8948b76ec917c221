//! Messages for the mailer, sealed to its public key.
//!
//! `linktoken.request` puts one message per accepted request into `linktoken.outbox`. The part
//! of it that opens the account (the link token and the typed code) is sealed to the mailer's
//! X25519 public key with an anonymous sealed box (libsodium's `crypto_box_seal`: an ephemeral
//! key pair per message, XSalsa20-Poly1305), so the database, its dumps, replicas and backups
//! never hold a usable token: only the holder of the mailer's private key opens it.
//!
//! A message names its key by a fingerprint (the first 8 bytes of the public key's SHA-256), so
//! a mailer that holds several keys (during a rotation) picks the right one.

use crypto_box::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};

/// Bytes of an X25519 key, public or private.
pub const KEY_BYTES: usize = 32;
/// Bytes of a key's fingerprint.
pub const FINGERPRINT_BYTES: usize = 8;

/// The secret part of a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Secret {
    /// The link token (`ltk_…`).
    pub token: String,
    /// The typed code, for purposes with codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Why sealing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    /// Not a 32-byte public key.
    BadKey,
    /// The OS random number generator failed.
    RandomUnavailable,
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SealError::BadKey => "the mailer's public key must be 32 bytes (X25519)",
            SealError::RandomUnavailable => {
                "the operating system's random number generator is unavailable"
            }
        })
    }
}

/// The fingerprint of a public key.
pub fn fingerprint(public_key: &[u8]) -> [u8; FINGERPRINT_BYTES] {
    let digest = Sha256::digest(public_key);
    let mut out = [0u8; FINGERPRINT_BYTES];
    out.copy_from_slice(&digest[..FINGERPRINT_BYTES]);
    out
}

/// Seals `secret` to `public_key` (32 bytes).
pub fn seal(public_key: &[u8], secret: &Secret) -> Result<Vec<u8>, SealError> {
    let key: [u8; KEY_BYTES] = public_key.try_into().map_err(|_| SealError::BadKey)?;
    let plaintext = serde_json::to_vec(secret).expect("a secret serializes");
    PublicKey::from(key)
        .seal(&mut crypto_box::aead::OsRng, &plaintext)
        .map_err(|_| SealError::RandomUnavailable)
}

/// Opens a sealed secret with the private key; None if it was not sealed to this key, was
/// changed, or is not a secret.
pub fn open(secret_key: &[u8; KEY_BYTES], sealed: &[u8]) -> Option<Secret> {
    let plaintext = SecretKey::from(*secret_key).unseal(sealed).ok()?;
    serde_json::from_slice(&plaintext).ok()
}

/// A new key pair from the OS CSPRNG: (private, public).
pub fn keypair() -> ([u8; KEY_BYTES], [u8; KEY_BYTES]) {
    let secret = SecretKey::generate(&mut crypto_box::aead::OsRng);
    (secret.to_bytes(), *secret.public_key().as_bytes())
}

/// The public key of a private key.
pub fn public_key_of(secret_key: &[u8; KEY_BYTES]) -> [u8; KEY_BYTES] {
    *SecretKey::from(*secret_key).public_key().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret {
            token: "ltk_example".into(),
            code: Some("493027".into()),
        }
    }

    #[test]
    fn only_the_right_private_key_opens_a_message() {
        let (private, public) = keypair();
        let (other_private, _) = keypair();
        let sealed = seal(&public, &secret()).unwrap();
        assert_eq!(open(&private, &sealed), Some(secret()));
        assert_eq!(open(&other_private, &sealed), None);
        assert_eq!(public_key_of(&private), public);
    }

    #[test]
    fn sealed_messages_hide_the_token_and_differ_every_time() {
        let (_, public) = keypair();
        let a = seal(&public, &secret()).unwrap();
        let b = seal(&public, &secret()).unwrap();
        assert_ne!(a, b, "an ephemeral key per message");
        let text = String::from_utf8_lossy(&a);
        assert!(!text.contains("ltk_") && !text.contains("493027"));
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let (private, public) = keypair();
        let sealed = seal(&public, &secret()).unwrap();
        for i in 0..sealed.len() {
            let mut changed = sealed.clone();
            changed[i] ^= 0x01;
            assert_eq!(open(&private, &changed), None, "byte {i}");
        }
        assert_eq!(open(&private, &sealed[..sealed.len() - 1]), None);
        assert_eq!(open(&private, &[]), None);
    }

    #[test]
    fn keys_are_checked_and_fingerprinted() {
        assert_eq!(seal(&[0u8; 31], &secret()), Err(SealError::BadKey));
        let (_, a) = keypair();
        let (_, b) = keypair();
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), fingerprint(&a));
    }

    #[test]
    fn a_code_is_optional() {
        let (private, public) = keypair();
        let plain = Secret {
            token: "ltk_x".into(),
            code: None,
        };
        assert_eq!(open(&private, &seal(&public, &plain).unwrap()), Some(plain));
    }
}
