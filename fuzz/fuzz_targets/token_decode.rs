//! Link token decoding: `token::validate` / `token::parse` and the gateway's pre-check
//! `is_well_formed` on arbitrary text. Besides "no panic": whatever validates is canonical
//! (re-encoding its secret gives back the same text) and parses to the SHA-256 of the text.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use linktoken_core::token;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let validated = token::validate(text);
    let parsed = token::parse(text);
    let _ = linktoken_core::is_well_formed(text);
    match validated {
        Ok(n) => {
            assert!((token::MIN_SECRET_BYTES..=token::MAX_SECRET_BYTES).contains(&n));
            assert_eq!(parsed, Ok(token::hash(text)));
            assert!(linktoken_core::is_well_formed(text));
            let raw = URL_SAFE_NO_PAD
                .decode(&text[token::PREFIX.len()..])
                .expect("a valid token is base64url");
            assert_eq!(raw.len(), n + 4);
            assert_eq!(
                token::encode(&raw[..n]),
                text,
                "only canonical spellings validate"
            );
        }
        Err(why) => assert_eq!(parsed, Err(why)),
    }
});
