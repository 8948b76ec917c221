//! Form body parsing (`form::parse`) with an arbitrary Content-Type and body.
//!
//! Input layout: the Content-Type header value up to the first `\n`, the body after it; an
//! input without `\n`, or whose first line is not UTF-8, is a body without a Content-Type.
//! Besides "no panic": an accepted form has at most MAX_FIELDS string values and no NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linktoken_core::form;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    if let Ok(fields) = form::parse(content_type, body) {
        assert!(fields.len() <= form::MAX_FIELDS);
        for (name, value) in &fields {
            assert!(!name.contains('\0'));
            let value = value.as_str().expect("every field value is a string");
            assert!(!value.contains('\0'));
        }
    }
});
