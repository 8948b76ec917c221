//! Sealed-token opening: `sealed::key_id` and `sealed::open` with a fixed (fake) key on arbitrary
//! text. Besides "no panic": anything that opens has a key id, and fits the length limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linktoken_core::sealed;

/// A fixed test key (never used outside the fuzz targets and their seed corpus).
const KEY: [u8; sealed::KEY_BYTES] = [0x42; sealed::KEY_BYTES];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let kid = sealed::key_id(text);
    if let Ok(claims) = sealed::open(&KEY, text) {
        assert!(kid.is_ok());
        assert!(text.len() <= sealed::MAX_LEN);
        assert!(claims.purpose.len() <= 255 && claims.subject.len() <= 65535);
    }
});
