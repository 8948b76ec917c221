//! What the gateway trusts a browser to tell it, and what it hands a browser back: the origin
//! check of state-changing POSTs, the bind cookie it reads and the session cookies it sets.
//! Pure functions over headers, so plain `cargo test` covers every case.
//!
//! The origin rule (docs/gateway.md, "Cross-site requests"): a POST that changes state must
//! come from a page of `--public-url`. Browsers say where a request comes from in `Origin`
//! (sent on every cross-site POST, and on same-origin POSTs by current browsers) and in
//! `Sec-Fetch-Site`. A request with neither header comes from no browser (curl, a mail
//! client, a mail provider's server) and cannot carry a victim's cookies, so it is allowed.

use hyper::header::{self, HeaderMap, HeaderValue};

/// Name of the cookie that carries the browser's bind value (set by the application when
/// someone asks for a link; see docs/gateway.md). Behind https only the `__Host-` form is read.
pub const BIND_COOKIE: &str = "linktoken_bind";

/// The `__Host-` form: a cookie with that prefix can only have been set by this host over
/// https, for the whole site, never by a sibling domain or a plain-http response.
const HOST_PREFIX: &str = "__Host-";

/// A web origin: scheme, host and port, with the scheme's default port written as none (so
/// `https://a.example` and `https://a.example:443` are one origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: &'static str,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// The origin of `--public-url` (a path after it is ignored). Refused: other schemes than
    /// http and https, user info, no host, a port that is not a number.
    pub fn of_url(url: &str) -> Result<Origin, String> {
        let authority_end = |rest: &str| rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (scheme, rest) = split_scheme(url)
            .ok_or_else(|| format!("--public-url {url:?}: not an http:// or https:// URL"))?;
        let authority = &rest[..authority_end(rest)];
        if authority.contains('@') {
            return Err(format!("--public-url {url:?}: user info is not allowed"));
        }
        Origin::parse_authority(scheme, authority)
            .ok_or_else(|| format!("--public-url {url:?}: not a valid host and port"))
    }

    /// An `Origin` header's value, exactly `scheme://host[:port]` as browsers serialize it.
    /// None for anything else, `null` included.
    pub fn of_header(value: &str) -> Option<Origin> {
        let (scheme, authority) = split_scheme(value)?;
        if authority.contains(['/', '?', '#', '@']) {
            return None;
        }
        Origin::parse_authority(scheme, authority)
    }

    fn parse_authority(scheme: &'static str, authority: &str) -> Option<Origin> {
        let (host, port) = match authority.rfind(':') {
            // An IPv6 literal's colons are inside its brackets.
            Some(i) if !authority[i..].contains(']') => (
                &authority[..i],
                Some(authority[i + 1..].parse::<u16>().ok()?),
            ),
            _ => (authority, None),
        };
        if !host_ok(host) {
            return None;
        }
        let default = if scheme == "https" { 443 } else { 80 };
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.filter(|&p| p != default),
        })
    }
}

/// `http://` or `https://` (any case), and the rest.
fn split_scheme(s: &str) -> Option<(&'static str, &str)> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.eq_ignore_ascii_case("https") {
        Some(("https", rest))
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(("http", rest))
    } else {
        None
    }
}

/// A registered name or IPv4 address (letters, digits, `-`, `.`), or a bracketed IPv6 literal.
fn host_ok(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Why a state-changing request was refused; fixed names for the log and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossSite {
    /// `Origin` names another origin, or cannot be read (several, not text, not an origin).
    ForeignOrigin,
    /// `Origin: null` (a sandboxed frame, a `data:` page, a page with `no-referrer`, a
    /// cross-origin redirect chain) without `Sec-Fetch-Site: same-origin`.
    NullOrigin,
    /// No `Origin`, and `Sec-Fetch-Site` says `same-site` or `cross-site` (or cannot be read).
    FetchSite,
}

impl CrossSite {
    pub fn name(self) -> &'static str {
        match self {
            CrossSite::ForeignOrigin => "foreign_origin",
            CrossSite::NullOrigin => "null_origin",
            CrossSite::FetchSite => "cross_site_fetch",
        }
    }
}

/// The single header with this name: Ok(None) when absent, Err when repeated or not text.
fn single(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, ()> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    first.map(|v| v.to_str().map_err(drop)).transpose()
}

/// `Sec-Fetch-Site`: Ok(None) when absent, Err when it cannot be read.
fn fetch_site(headers: &HeaderMap) -> Result<Option<String>, ()> {
    let value = single(headers, header::HeaderName::from_static("sec-fetch-site"))?;
    Ok(value.map(|v| v.trim().to_ascii_lowercase()))
}

/// Did a browser send this request from a page of `own`? Ok when `Origin` is `own`; when there
/// is no `Origin`, when `Sec-Fetch-Site` is `same-origin` or `none` (typed into the address
/// bar, a bookmark); when there is neither header, because no browser sent it.
///
/// `Origin: null` passes only with `Sec-Fetch-Site: same-origin`. The gateway's own pages send
/// `Referrer-Policy: no-referrer`, and under that policy browsers write `Origin: null` on
/// every POST, same-origin ones included (Fetch standard, "serializing a request origin").
/// `Sec-Fetch-Site` is set by the browser alone (page script cannot set it) and is `cross-site`
/// for a null origin anywhere else: another site's `no-referrer` page, a sandboxed frame, a
/// redirect through another site.
pub fn same_origin(own: &Origin, headers: &HeaderMap) -> Result<(), CrossSite> {
    let site = fetch_site(headers);
    match single(headers, header::ORIGIN) {
        Err(()) => Err(CrossSite::ForeignOrigin),
        Ok(Some(v)) if v.trim() == "null" => match site.as_ref().map(|s| s.as_deref()) {
            Ok(Some("same-origin")) => Ok(()),
            _ => Err(CrossSite::NullOrigin),
        },
        Ok(Some(v)) => match Origin::of_header(v.trim()) {
            Some(o) if o == *own => Ok(()),
            _ => Err(CrossSite::ForeignOrigin),
        },
        Ok(None) => match site.as_ref().map(|s| s.as_deref()) {
            Ok(None | Some("same-origin" | "none")) => Ok(()),
            _ => Err(CrossSite::FetchSite),
        },
    }
}

/// The browser's bind value from its cookies, if it has a well-formed one: behind https only
/// from `__Host-linktoken_bind`, over plain http only from `linktoken_bind`. (Accepting the
/// plain name behind https would let a sibling subdomain or a plain-http response, which can
/// set that name but never a `__Host-` one, plant a bind value.)
pub fn bind_cookie(headers: &HeaderMap, https: bool) -> Option<String> {
    let wanted = bind_cookie_name(https);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| linktoken_core::input::bind_value("bind", value).is_ok())
}

/// The bind cookie's name in this mode.
pub fn bind_cookie_name(https: bool) -> String {
    if https {
        format!("{HOST_PREFIX}{BIND_COOKIE}")
    } else {
        BIND_COOKIE.to_owned()
    }
}

fn cookie_token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn cookie_value_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 4096
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b',' && b != b';' && b != b'\\')
}

/// `{"name", "value", "max_age"}` from an action's result, as a Set-Cookie header: HttpOnly,
/// SameSite=Lax, Path=/; Secure with the `__Host-` prefix behind https.
pub fn session_cookie(session: &serde_json::Value, https: bool) -> Option<HeaderValue> {
    let name = session.get("name")?.as_str()?;
    let value = session.get("value")?.as_str()?;
    if !cookie_token_ok(name) || !cookie_value_ok(value) {
        eprintln!("warn: ignoring a session cookie with an invalid name or value from an action");
        return None;
    }
    let mut cookie = if https {
        format!("{HOST_PREFIX}{name}={value}")
    } else {
        format!("{name}={value}")
    };
    if let Some(age) = session.get("max_age").and_then(|v| v.as_i64()) {
        cookie.push_str(&format!("; Max-Age={}", age.max(0)));
    }
    cookie.push_str("; Path=/; HttpOnly; SameSite=Lax");
    if https {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn own(url: &str) -> Origin {
        Origin::of_url(url).unwrap()
    }

    #[test]
    fn public_url_origins() {
        assert_eq!(
            own("https://links.example.org"),
            own("https://links.example.org/")
        );
        assert_eq!(
            own("https://links.example.org:443/x?y"),
            own("HTTPS://Links.Example.org")
        );
        assert_eq!(own("http://127.0.0.1:80"), own("http://127.0.0.1"));
        assert_ne!(own("http://127.0.0.1:8080"), own("http://127.0.0.1"));
        assert_ne!(own("http://a.example"), own("https://a.example"));
        assert_eq!(
            own("http://[::1]:8080"),
            Origin::of_header("http://[::1]:8080").unwrap()
        );
        for bad in [
            "links.example.org",
            "ftp://links.example.org",
            "https://",
            "https://user:pw@links.example.org",
            "https://links.example.org:99999",
            "https://links.example.org:x",
            "https://[::1",
            "https://a b",
        ] {
            assert!(Origin::of_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origin_headers_are_exact_serializations() {
        let o = own("https://links.example.org");
        assert_eq!(
            Origin::of_header("https://links.example.org"),
            Some(o.clone())
        );
        assert_eq!(
            Origin::of_header("https://links.example.org:443"),
            Some(o.clone())
        );
        for bad in [
            "null",
            "",
            "https://links.example.org/",
            "https://links.example.org/path",
            "https://x@links.example.org",
            "links.example.org",
            "https://links.example.org:",
        ] {
            assert_eq!(Origin::of_header(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn same_origin_rule() {
        let o = own("https://links.example.org");
        let check = |pairs: &[(&'static str, &str)]| same_origin(&o, &headers(pairs));
        // Neither header: no browser sent it (curl, mail clients).
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&[("origin", "https://links.example.org")]), Ok(()));
        assert_eq!(
            check(&[("origin", "https://links.example.org:443")]),
            Ok(())
        );
        assert_eq!(check(&[("origin", "https://LINKS.example.org")]), Ok(()));
        // Origin decides when present.
        assert_eq!(
            check(&[
                ("origin", "https://links.example.org"),
                ("sec-fetch-site", "same-origin")
            ]),
            Ok(())
        );
        let foreign = Err(CrossSite::ForeignOrigin);
        assert_eq!(check(&[("origin", "https://evil.example")]), foreign);
        assert_eq!(
            check(&[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin")
            ]),
            foreign,
            "a same-origin claim does not excuse a foreign Origin"
        );
        assert_eq!(
            check(&[("origin", "http://links.example.org")]),
            foreign,
            "scheme"
        );
        assert_eq!(
            check(&[("origin", "https://links.example.org:8443")]),
            foreign,
            "port"
        );
        assert_eq!(
            check(&[("origin", "https://links.example.org.evil.example")]),
            foreign
        );
        assert_eq!(
            check(&[("origin", "https://sub.links.example.org")]),
            foreign
        );
        assert_eq!(
            check(&[
                ("origin", "https://links.example.org"),
                ("origin", "https://links.example.org")
            ]),
            foreign,
            "two Origin headers"
        );
        // Origin: null is what browsers send from the gateway's own no-referrer pages, with
        // Sec-Fetch-Site: same-origin; from anywhere else it comes with cross-site, or alone.
        let null = Err(CrossSite::NullOrigin);
        assert_eq!(check(&[("origin", "null")]), null);
        assert_eq!(
            check(&[("origin", "null"), ("sec-fetch-site", "cross-site")]),
            null
        );
        assert_eq!(
            check(&[("origin", "null"), ("sec-fetch-site", "same-site")]),
            null
        );
        assert_eq!(
            check(&[("origin", "null"), ("sec-fetch-site", "none")]),
            null
        );
        assert_eq!(
            check(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
            Ok(())
        );
        // No Origin: Sec-Fetch-Site decides.
        assert_eq!(check(&[("sec-fetch-site", "same-origin")]), Ok(()));
        assert_eq!(check(&[("sec-fetch-site", "none")]), Ok(()));
        for bad in ["cross-site", "same-site", "", "whatever"] {
            assert_eq!(
                check(&[("sec-fetch-site", bad)]),
                Err(CrossSite::FetchSite),
                "{bad:?}"
            );
        }
        let mut two = headers(&[("sec-fetch-site", "none")]);
        two.append("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert_eq!(same_origin(&o, &two), Err(CrossSite::FetchSite));
        let mut binary = HeaderMap::new();
        binary.insert(
            "origin",
            HeaderValue::from_bytes(b"https://\xfflinks").unwrap(),
        );
        assert_eq!(same_origin(&o, &binary), foreign);
    }

    #[test]
    fn default_ports_and_plain_http() {
        let o = own("http://127.0.0.1:8080");
        let check = |v: &str| same_origin(&o, &headers(&[("origin", v)]));
        assert_eq!(check("http://127.0.0.1:8080"), Ok(()));
        assert!(check("http://127.0.0.1").is_err());
        assert!(check("http://localhost:8080").is_err());
        let o = own("http://links.example");
        assert_eq!(
            same_origin(&o, &headers(&[("origin", "http://links.example:80")])),
            Ok(())
        );
    }

    #[test]
    fn bind_cookie_name_depends_on_the_scheme() {
        let value = "a".repeat(48);
        let plain = headers(&[("cookie", &format!("x=1; linktoken_bind={value}"))]);
        let host = headers(&[("cookie", &format!("__Host-linktoken_bind={value}; y=2"))]);
        assert_eq!(bind_cookie(&plain, false), Some(value.clone()));
        assert_eq!(bind_cookie(&host, false), None, "http: only the plain name");
        assert_eq!(bind_cookie(&host, true), Some(value.clone()));
        assert_eq!(bind_cookie(&plain, true), None, "https: only __Host-");
        let both = headers(&[(
            "cookie",
            &format!("linktoken_bind=planted{value}; __Host-linktoken_bind={value}"),
        )]);
        assert_eq!(bind_cookie(&both, true), Some(value));
        assert_eq!(
            bind_cookie(&headers(&[("cookie", "linktoken_bind=")]), false),
            None
        );
    }

    #[test]
    fn session_cookies() {
        let s = json!({"name": "sid", "value": "abc123", "max_age": 3600});
        let plain = session_cookie(&s, false).unwrap();
        assert_eq!(
            plain,
            "sid=abc123; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax"
        );
        let secure = session_cookie(&s, true).unwrap();
        assert_eq!(
            secure,
            "__Host-sid=abc123; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(session_cookie(&json!({"name": "a;b", "value": "x"}), false).is_none());
        assert!(session_cookie(&json!({"name": "a", "value": "x; Domain=evil"}), false).is_none());
    }
}
