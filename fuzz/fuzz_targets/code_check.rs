//! Typed codes: `code::normalize` of what a person typed, and `code::verify` against a stored
//! keyed hash. Input: `purpose\nsubject\ntyped` (missing parts are empty).
//! Besides "no panic": a normalised code is 6 to 10 ASCII digits and normalises to itself; the
//! hash of a code verifies, a different code or a truncated hash does not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linktoken_core::code;

const KEY: &[u8] = b"fixed fuzzing key, not a real one";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let purpose = parts.next().unwrap_or("");
    let subject = parts.next().unwrap_or("");
    let typed = parts.next().unwrap_or("");
    let Some(c) = code::normalize(typed) else {
        return;
    };
    assert!((6..=10).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(code::normalize(&c).as_deref(), Some(c.as_str()));
    let stored = code::hash(KEY, purpose, subject, &c);
    assert!(code::verify(KEY, purpose, subject, &c, &stored));
    assert!(!code::verify(KEY, purpose, subject, &c, &stored[..31]));
    let mut other = c.clone().into_bytes();
    other[0] = if other[0] == b'9' { b'0' } else { other[0] + 1 };
    let other = String::from_utf8(other).expect("ASCII digits");
    assert!(!code::verify(KEY, purpose, subject, &other, &stored));
});
