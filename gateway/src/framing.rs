//! Checks on how a request's body is framed that hyper leaves to the application.
//!
//! hyper already refuses a Transfer-Encoding whose last coding is not `chunked`, conflicting
//! Content-Lengths, and Transfer-Encoding in HTTP/1.0; with both Content-Length and
//! Transfer-Encoding it drops the length, reads the body as chunked and closes the connection
//! afterwards (RFC 9112 section 6.1). It does accept codings before `chunked` (`gzip, chunked`)
//! and hands the still-encoded bytes on: the gateway decodes no coding, so those are refused.
//!
//! This check is the only place codings before `chunked` are refused: the request screen
//! (screen.rs) refuses both framing fields together and two lengths before hyper sees the
//! head, but reads the body of any Transfer-Encoding as chunked, as hyper does, and leaves the
//! codings to hyper and to this check (screen/hyper_alone.rs shows what hyper accepts).

use hyper::header::{HeaderMap, TRANSFER_ENCODING};

/// True when the request's Transfer-Encoding is anything but a single `chunked` (or absent).
pub fn unsupported_transfer_coding(headers: &HeaderMap) -> bool {
    let mut codings = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|c| c.trim_ascii())
        .filter(|c| !c.is_empty());
    match (codings.next(), codings.next()) {
        (None, _) => false,
        (Some(only), None) => !only.eq_ignore_ascii_case(b"chunked"),
        (Some(_), Some(_)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn te(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(TRANSFER_ENCODING, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_a_single_chunked_is_supported() {
        assert!(!unsupported_transfer_coding(&te(&[])));
        assert!(!unsupported_transfer_coding(&te(&["chunked"])));
        assert!(!unsupported_transfer_coding(&te(&["Chunked "])));
        assert!(unsupported_transfer_coding(&te(&["gzip, chunked"])));
        assert!(unsupported_transfer_coding(&te(&["chunked, chunked"])));
        assert!(unsupported_transfer_coding(&te(&["gzip", "chunked"])));
        assert!(unsupported_transfer_coding(&te(&["identity"])));
    }
}
