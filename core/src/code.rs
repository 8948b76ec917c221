//! Typed codes: the short numeric alternative to a link ("or enter 493 027"), for mail that
//! scanners fetch and for reading on one device and typing on another.
//!
//! * Digits are uniformly random from the OS CSPRNG (rejection sampling, no modulo bias).
//! * Only a keyed hash is stored: HMAC-SHA-256 under a key that is not in the table (and not in
//!   a dump), over purpose, subject and code, so a stolen table cannot be brute-forced offline.
//! * Checking compares MACs in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Wrong codes a subject may type in a row, across windows and re-issued codes, before its
/// codes are locked until a successful redemption or `linktoken.unlock_codes` (NIST SP 800-63B:
/// at most 100 consecutive failed attempts).
pub const MAX_CONSECUTIVE_FAILURES: i32 = 100;

/// Fewest and most digits a code may have.
pub const MIN_DIGITS: u32 = 6;
pub const MAX_DIGITS: u32 = 10;

type HmacSha256 = Hmac<Sha256>;

/// A fresh code of `digits` digits (clamped to 6..=10) from the OS CSPRNG, leading zeros kept.
pub fn generate(digits: u32) -> Result<String, crate::token::RandomUnavailable> {
    generate_with(&mut rand_core::OsRng, digits)
}

/// A fresh code of `digits` digits (clamped to 6..=10) from `rng`, leading zeros kept.
pub fn generate_with<R: rand_core::TryCryptoRng + ?Sized>(
    rng: &mut R,
    digits: u32,
) -> Result<String, crate::token::RandomUnavailable> {
    let digits = digits.clamp(MIN_DIGITS, MAX_DIGITS);
    let range = 10u64.pow(digits);
    // Largest multiple of `range` that fits: values at or above it are drawn again.
    let limit = u64::MAX - (u64::MAX % range);
    loop {
        let mut b = [0u8; 8];
        crate::token::fill_from(rng, &mut b)?;
        let v = u64::from_be_bytes(b);
        if v < limit {
            return Ok(format!("{:0width$}", v % range, width = digits as usize));
        }
    }
}

/// Normalises what a person typed: spaces and dashes removed ("493 027", "493-027").
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let len = code.len() as u32;
    ((MIN_DIGITS..=MAX_DIGITS).contains(&len) && code.bytes().all(|b| b.is_ascii_digit()))
        .then_some(code)
}

fn mac(key: &[u8], purpose: &str, subject: &str, code: &str) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    // Domain separation from sealing, and unambiguous field boundaries.
    m.update(b"linktoken code v1\0");
    for part in [purpose, subject, code] {
        m.update(&(part.len() as u32).to_be_bytes());
        m.update(part.as_bytes());
    }
    m
}

/// The keyed hash stored for a code.
pub fn hash(key: &[u8], purpose: &str, subject: &str, code: &str) -> [u8; 32] {
    mac(key, purpose, subject, code)
        .finalize()
        .into_bytes()
        .into()
}

/// The key of a subject's attempt counter: SHA-256 of `purpose:subject` (purpose names never
/// contain `:`). Subjects are typed by whoever uses the code form, so they are kept only hashed.
pub fn attempt_key(purpose: &str, subject: &str) -> [u8; 32] {
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(purpose.as_bytes());
    h.update(b":");
    h.update(subject.as_bytes());
    h.finalize().into()
}

/// Constant-time check of a typed code against the stored keyed hash.
pub fn verify(key: &[u8], purpose: &str, subject: &str, code: &str, stored: &[u8]) -> bool {
    mac(key, purpose, subject, code)
        .verify_slice(stored)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_generators_give_reproducible_codes() {
        use rand_chacha::rand_core::SeedableRng;
        use rand_chacha::ChaCha20Rng;
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let codes: Vec<String> = (0..2000)
            .map(|_| generate_with(&mut rng, 6).unwrap())
            .collect();
        let mut again = ChaCha20Rng::seed_from_u64(1);
        assert_eq!(codes[0], generate_with(&mut again, 6).unwrap());
        assert!(codes
            .iter()
            .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        // Leading zeros are kept: about 10% of 2000 codes start with 0.
        let leading_zero = codes.iter().filter(|c| c.starts_with('0')).count();
        assert!((100..300).contains(&leading_zero), "{leading_zero}");
        assert_eq!(
            generate_with(&mut ChaCha20Rng::seed_from_u64(1), 12)
                .unwrap()
                .len(),
            MAX_DIGITS as usize,
            "clamped to 10 digits"
        );
        assert!(generate_with(&mut crate::token::tests::Broken, 6).is_err());
    }

    #[test]
    fn attempt_keys_are_sha256_of_purpose_colon_subject() {
        use sha2::Digest;
        let k = attempt_key("login", "anna@example.org");
        let expected: [u8; 32] = Sha256::digest(b"login:anna@example.org").into();
        assert_eq!(k, expected);
        assert_ne!(attempt_key("login", "anna"), attempt_key("login", "anna "));
        assert_ne!(attempt_key("login", "anna"), attempt_key("signup", "anna"));
    }

    #[test]
    fn codes_have_the_asked_length_and_only_digits() {
        for d in [6, 8, 10] {
            let c = generate(d).unwrap();
            assert_eq!(c.len(), d as usize);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(generate(3).unwrap().len(), 6, "never fewer than 6 digits");
    }

    #[test]
    fn digits_are_roughly_uniform() {
        let mut counts = [0u32; 10];
        for _ in 0..20_000 {
            for b in generate(6).unwrap().bytes() {
                counts[(b - b'0') as usize] += 1;
            }
        }
        // 120,000 digits: each expected 12,000; chi-square with 9 degrees of freedom.
        let chi: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - 12_000.0).powi(2) / 12_000.0)
            .sum();
        assert!(
            chi < 27.88,
            "chi-square {chi} (p < 0.001 would be 27.88): {counts:?}"
        );
    }

    #[test]
    fn verification_binds_purpose_subject_and_key() {
        let h = hash(b"key-1", "login", "user:42", "493027");
        assert!(verify(b"key-1", "login", "user:42", "493027", &h));
        assert!(!verify(b"key-1", "login", "user:42", "493028", &h));
        assert!(!verify(b"key-1", "login", "user:43", "493027", &h));
        assert!(!verify(b"key-1", "reset", "user:42", "493027", &h));
        assert!(!verify(b"key-2", "login", "user:42", "493027", &h));
        assert!(
            !verify(b"key-1", "login", "user:4", "2493027", &h),
            "field boundaries are unambiguous"
        );
    }

    #[test]
    fn typed_codes_are_normalised() {
        assert_eq!(normalize(" 493 027 ").as_deref(), Some("493027"));
        assert_eq!(normalize("493-027").as_deref(), Some("493027"));
        assert_eq!(normalize("49302"), None);
        assert_eq!(normalize("49302x"), None);
        assert_eq!(normalize("１２３４５６"), None, "only ASCII digits");
        assert_eq!(normalize(&"1".repeat(11)), None);
    }
}
