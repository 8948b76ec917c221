//! Sealing then opening arbitrary claims gives the same claims back; another key, another key
//! id or a truncated token never opens.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use linktoken_core::sealed::{self, Claims};

const KEY: [u8; sealed::KEY_BYTES] = [0x42; sealed::KEY_BYTES];
const OTHER_KEY: [u8; sealed::KEY_BYTES] = [0x43; sealed::KEY_BYTES];

#[derive(Debug, Arbitrary)]
struct Input {
    kid: u32,
    purpose: String,
    subject: String,
    payload: String,
    expires_at: i64,
    cut: u16,
}

fuzz_target!(|input: Input| {
    let claims = Claims {
        purpose: input.purpose,
        subject: input.subject,
        payload: input.payload,
        expires_at: input.expires_at,
    };
    let Some(text) = sealed::seal(&KEY, input.kid, &claims) else {
        // Only refused when a length field would overflow.
        assert!(claims.purpose.len() > 255 || claims.subject.len() > 65535);
        return;
    };
    assert!(text.starts_with(sealed::PREFIX));
    if text.len() > sealed::MAX_LEN {
        // Too long to be accepted (the extension refuses to hand out such a token).
        assert_eq!(sealed::open(&KEY, &text), Err(sealed::Unsealed::Malformed));
        return;
    }
    assert_eq!(sealed::key_id(&text), Ok(input.kid));
    assert_eq!(sealed::open(&KEY, &text).as_ref(), Ok(&claims));
    assert!(sealed::open(&OTHER_KEY, &text).is_err());
    let cut = usize::from(input.cut) % text.len();
    assert!(sealed::open(&KEY, &text[..cut]).is_err());
});
