//! The link token format: generation, parsing and hashing.
//!
//! ```text
//! ltk_<body>
//! body = base64url, no padding ( secret[n] || crc32(prefix || secret) as 4 bytes big-endian )
//! ```
//!
//! * `secret` is `n` bytes (16 to 32, default 32 = 256 bits) from the operating system's CSPRNG.
//! * The checksum lets garbage, truncated or mistyped tokens be rejected before any table lookup,
//!   and the fixed prefix lets secret scanners recognise a leaked token.
//! * Only canonical encodings parse (no padding, no stray trailing bits), so every secret has
//!   exactly one spelling and therefore exactly one stored hash.
//! * What is stored is SHA-256 over the whole token text ([`hash`]).
//!
//! Length: 4 + ceil((n + 4) * 4 / 3) characters: 52 for 256 bits, 31 for 128 bits.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand_core::{OsRng, TryCryptoRng};
use sha2::{Digest, Sha256};
use std::fmt;

/// Prefix of every stored (database-backed) link token.
pub const PREFIX: &str = "ltk_";
/// Fewest secret bytes a token may carry (128 bits).
pub const MIN_SECRET_BYTES: usize = 16;
/// Most secret bytes a token may carry, and the default (256 bits).
pub const MAX_SECRET_BYTES: usize = 32;
/// Default number of secret bytes.
pub const DEFAULT_SECRET_BYTES: usize = MAX_SECRET_BYTES;
const CHECKSUM_BYTES: usize = 4;
/// Longest possible token text; anything longer is rejected without decoding.
pub const MAX_TOKEN_LEN: usize = PREFIX.len() + encoded_len(MAX_SECRET_BYTES + CHECKSUM_BYTES);

/// Length of an unpadded base64 encoding of `bytes` bytes.
const fn encoded_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

/// SHA-256 of a token's text: the only form in which a token is ever stored.
pub type TokenHash = [u8; 32];

/// Why a token text was not accepted. Callers show all of these as the one status `invalid`;
/// the distinction exists for tests and for internal diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Empty,
    TooLong,
    WrongPrefix,
    NotBase64Url,
    WrongLength,
    BadChecksum,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self {
            Malformed::Empty => "empty token",
            Malformed::TooLong => "token too long",
            Malformed::WrongPrefix => "unknown token prefix",
            Malformed::NotBase64Url => "token is not canonical base64url",
            Malformed::WrongLength => "token has the wrong length",
            Malformed::BadChecksum => "token checksum does not match",
        };
        f.write_str(why)
    }
}

/// The operating system's random number generator failed (it practically never does; when it
/// does, no token may be produced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomUnavailable;

impl fmt::Display for RandomUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the operating system's random number generator is unavailable")
    }
}

/// Fills `buf` from the operating system's CSPRNG (rand_core's `OsRng`): the only source of
/// secrets in production.
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomUnavailable> {
    fill_from(&mut OsRng, buf)
}

/// Fills `buf` from a cryptographically secure generator. Production passes `OsRng`; tests may
/// pass a seeded generator to check formats deterministically.
pub fn fill_from<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    buf: &mut [u8],
) -> Result<(), RandomUnavailable> {
    rng.try_fill_bytes(buf).map_err(|_| RandomUnavailable)
}

fn checksum(secret: &[u8]) -> [u8; CHECKSUM_BYTES] {
    let mut crc = crc32fast::Hasher::new();
    crc.update(PREFIX.as_bytes());
    crc.update(secret);
    crc.finalize().to_be_bytes()
}

/// Builds the token text for a given secret. `secret` must be 16 to 32 bytes.
pub fn encode(secret: &[u8]) -> String {
    assert!(
        (MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.len()),
        "secret length out of range"
    );
    let mut raw = Vec::with_capacity(secret.len() + CHECKSUM_BYTES);
    raw.extend_from_slice(secret);
    raw.extend_from_slice(&checksum(secret));
    let mut out = String::with_capacity(PREFIX.len() + encoded_len(raw.len()));
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(&raw, &mut out);
    out
}

/// A fresh token with `secret_bytes` bytes (clamped to 16..=32) from the OS CSPRNG.
pub fn generate(secret_bytes: usize) -> Result<String, RandomUnavailable> {
    generate_with(&mut OsRng, secret_bytes)
}

/// A fresh token with `secret_bytes` bytes (clamped to 16..=32) from `rng`.
pub fn generate_with<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    secret_bytes: usize,
) -> Result<String, RandomUnavailable> {
    let n = secret_bytes.clamp(MIN_SECRET_BYTES, MAX_SECRET_BYTES);
    let mut secret = [0u8; MAX_SECRET_BYTES];
    fill_from(rng, &mut secret[..n])?;
    Ok(encode(&secret[..n]))
}

/// Checks a token's shape and checksum without any lookup. Returns the secret's length in bytes.
pub fn validate(text: &str) -> Result<usize, Malformed> {
    if text.is_empty() {
        return Err(Malformed::Empty);
    }
    if text.len() > MAX_TOKEN_LEN {
        return Err(Malformed::TooLong);
    }
    let body = text.strip_prefix(PREFIX).ok_or(Malformed::WrongPrefix)?;
    let min_len = encoded_len(MIN_SECRET_BYTES + CHECKSUM_BYTES);
    if body.len() < min_len {
        return Err(Malformed::WrongLength);
    }
    let mut raw = [0u8; MAX_SECRET_BYTES + CHECKSUM_BYTES + 3];
    let n = URL_SAFE_NO_PAD
        .decode_slice(body.as_bytes(), &mut raw)
        .map_err(|_| Malformed::NotBase64Url)?;
    if !(MIN_SECRET_BYTES + CHECKSUM_BYTES..=MAX_SECRET_BYTES + CHECKSUM_BYTES).contains(&n) {
        return Err(Malformed::WrongLength);
    }
    let (secret, sum) = raw[..n].split_at(n - CHECKSUM_BYTES);
    if checksum(secret) != sum {
        return Err(Malformed::BadChecksum);
    }
    Ok(secret.len())
}

/// SHA-256 of the token text.
pub fn hash(text: &str) -> TokenHash {
    Sha256::digest(text.as_bytes()).into()
}

/// Validates a token and returns its hash: what peek and redeem look up.
pub fn parse(text: &str) -> Result<TokenHash, Malformed> {
    validate(text)?;
    Ok(hash(text))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::collections::HashSet;

    /// A generator that always fails, as the OS one might.
    pub(crate) struct Broken;
    impl rand_core::TryRngCore for Broken {
        type Error = std::io::Error;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Err(std::io::Error::other("no entropy"))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Err(std::io::Error::other("no entropy"))
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
            Err(std::io::Error::other("no entropy"))
        }
    }
    impl rand_core::TryCryptoRng for Broken {}

    #[test]
    fn seeded_generators_give_reproducible_well_formed_tokens() {
        let a = generate_with(&mut ChaCha20Rng::seed_from_u64(7), 32).unwrap();
        let b = generate_with(&mut ChaCha20Rng::seed_from_u64(7), 32).unwrap();
        let c = generate_with(&mut ChaCha20Rng::seed_from_u64(8), 32).unwrap();
        assert_eq!(a, b, "the same seed gives the same token");
        assert_ne!(a, c);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 48, "{a}");
        assert_eq!(validate(&a), Ok(32));
        let short = generate_with(&mut ChaCha20Rng::seed_from_u64(7), 16).unwrap();
        assert_eq!(validate(&short), Ok(16));
        assert_eq!(
            validate(&generate_with(&mut ChaCha20Rng::seed_from_u64(7), 99).unwrap()),
            Ok(MAX_SECRET_BYTES),
            "clamped to 32 bytes"
        );
    }

    #[test]
    fn a_failing_generator_gives_no_token() {
        assert_eq!(generate_with(&mut Broken, 32), Err(RandomUnavailable));
        assert_eq!(
            fill_from(&mut Broken, &mut [0u8; 8]),
            Err(RandomUnavailable)
        );
    }

    #[test]
    fn default_token_is_256_bits_52_chars_url_safe() {
        let t = generate(DEFAULT_SECRET_BYTES).unwrap();
        assert_eq!(t.len(), 52);
        assert!(t.starts_with("ltk_"));
        assert!(t.len() <= 64);
        assert!(t[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(validate(&t), Ok(32));
    }

    #[test]
    fn short_tokens_are_clamped_to_128_bits() {
        let t = generate(1).unwrap();
        assert_eq!(validate(&t), Ok(16));
        assert_eq!(t.len(), 31);
        let t = generate(1000).unwrap();
        assert_eq!(validate(&t), Ok(32));
    }

    #[test]
    fn every_length_between_16_and_32_round_trips() {
        for n in MIN_SECRET_BYTES..=MAX_SECRET_BYTES {
            let t = generate(n).unwrap();
            assert_eq!(validate(&t), Ok(n), "{n} bytes");
            assert!(t.len() <= MAX_TOKEN_LEN);
        }
    }

    #[test]
    fn no_duplicates_in_100k() {
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            assert!(seen.insert(generate(32).unwrap()));
        }
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let t = generate(32).unwrap();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 0..t.len() {
            for &c in alphabet {
                let mut b = t.clone().into_bytes();
                if b[i] == c {
                    continue;
                }
                b[i] = c;
                let changed = String::from_utf8(b).unwrap();
                assert!(validate(&changed).is_err(), "accepted {i}:{}", c as char);
            }
        }
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        let t = generate(32).unwrap();
        assert_eq!(validate(""), Err(Malformed::Empty));
        assert_eq!(validate(&"a".repeat(1 << 20)), Err(Malformed::TooLong));
        assert_eq!(
            validate(&t.replacen("ltk_", "ltx_", 1)),
            Err(Malformed::WrongPrefix)
        );
        assert_eq!(validate("ltk_"), Err(Malformed::WrongLength));
        // one character short: non-canonical or a checksum mismatch, depending on the random bits
        assert!(validate(&t[..t.len() - 1]).is_err());
        assert_eq!(validate(&t[..t.len() - 4]), Err(Malformed::BadChecksum));
        assert_eq!(validate(&format!("{t}==")), Err(Malformed::TooLong));
        assert_eq!(
            validate(&format!("{}==", &t[..50])),
            Err(Malformed::NotBase64Url)
        );
        assert_eq!(
            validate(&format!("ltk_/{}", &t[5..])),
            Err(Malformed::NotBase64Url)
        );
        assert_eq!(
            validate(&format!("ltk_{}", "é".repeat(20))),
            Err(Malformed::NotBase64Url)
        );
        assert_eq!(
            validate(&format!("{}\u{1}", &t[..51])),
            Err(Malformed::NotBase64Url)
        );
        assert_eq!(
            validate(&format!("{} ", &t[..51])),
            Err(Malformed::NotBase64Url)
        );
        assert_eq!(validate(&format!("{t} ")), Err(Malformed::TooLong));
    }

    #[test]
    fn non_canonical_trailing_bits_are_rejected() {
        // 16 secret bytes + 4 checksum = 20 bytes = 27 chars with 2 unused bits in the last one.
        let t = generate(16).unwrap();
        let last = t.as_bytes()[t.len() - 1];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let idx = alphabet.iter().position(|&c| c == last).unwrap();
        let sibling = alphabet[idx ^ 1] as char; // flips an unused low bit
        let mut other = t[..t.len() - 1].to_string();
        other.push(sibling);
        assert!(validate(&other).is_err());
    }

    #[test]
    fn hash_is_sha256_of_the_text() {
        let h = hash("abc");
        assert_eq!(
            h[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
        let t = generate(32).unwrap();
        assert_eq!(parse(&t), Ok(hash(&t)));
    }
}
