//! The TLS part of a libpq connection string, for a client (the gateway) whose PostgreSQL
//! driver, tokio-postgres 0.7, knows only `sslmode=disable|prefer|require` and rejects the
//! keys it does not know (`sslrootcert`, and `sslmode=verify-ca|verify-full`).
//!
//! [`extract`] finds `sslmode` and `sslrootcert` in either form of connection string, takes
//! them out, and returns the rest untouched for the driver to parse:
//!
//! * key=value (`host=db sslmode=verify-full sslrootcert='/etc/ca dir/root.crt'`), with
//!   libpq's rules: whitespace around `=`; a value is either unquoted (up to the next
//!   whitespace) or in single quotes; a backslash escapes the next character in both.
//! * URI (`postgres://` or `postgresql://`, `?key=value&...`): query values are
//!   percent-decoded; `ssl=true` means `sslmode=require`, as in libpq.
//!
//! A key given twice counts with its last value, as in libpq. [`plan`] then turns the two
//! settings into what the client must do, following libpq
//! (<https://www.postgresql.org/docs/15/libpq-ssl.html>): which sslmode to ask the driver
//! for, what to verify, and where the root certificates come from.
//!
//! Nothing here reads a file; nothing here echoes the connection string (it may hold a
//! password) in an error.

use std::fmt;
use std::path::{Path, PathBuf};

/// An `sslmode` this client supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// libpq's spelling (exact, case-sensitive, as libpq compares it).
    pub fn parse(value: &str) -> Result<SslMode, ConninfoError> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            "allow" => Err(ConninfoError::AllowUnsupported),
            other => Err(ConninfoError::InvalidSslMode(shorten(other))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong. No variant holds any part of the connection string except an sslmode
/// value (cut to 40 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConninfoError {
    /// An `sslmode` value libpq does not know.
    InvalidSslMode(String),
    /// `sslmode=allow`: valid for libpq, but the driver cannot start in clear text and then
    /// retry with TLS.
    AllowUnsupported,
    /// A key=value parameter name not followed by `=` (byte offset of the name).
    MissingEquals(usize),
    /// A single-quoted value without its closing quote.
    UnterminatedQuote,
    /// A URI query value of sslmode/sslrootcert with a broken `%XX` escape or one that does
    /// not decode to UTF-8 (the key).
    BadPercentEncoding(&'static str),
    /// `%00` in a URI query value of sslmode/sslrootcert (the key).
    NulInValue(&'static str),
    /// `ssl=` in a URI with a value other than `true`.
    InvalidSslFlag,
    /// `sslrootcert=system` with an sslmode weaker than verify-full (libpq 16's rule).
    WeakModeWithSystemRoots(SslMode),
    /// verify-ca/verify-full without sslrootcert, and no home directory to find
    /// `~/.postgresql/root.crt` in.
    NoHomeDirectory(SslMode),
}

impl fmt::Display for ConninfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConninfoError::InvalidSslMode(v) => write!(
                f,
                "invalid sslmode value: {v:?} (expected disable, prefer, require, verify-ca or verify-full)"
            ),
            ConninfoError::AllowUnsupported => f.write_str(
                "sslmode=allow is not supported (the driver cannot fall back from clear text to TLS); \
                 use prefer, require, verify-ca or verify-full",
            ),
            ConninfoError::MissingEquals(at) => write!(
                f,
                "missing \"=\" after the parameter name at byte {at} of the connection string"
            ),
            ConninfoError::UnterminatedQuote => {
                f.write_str("unterminated quoted string in the connection string")
            }
            ConninfoError::BadPercentEncoding(key) => {
                write!(f, "invalid percent-encoded value of {key} in the connection URI")
            }
            ConninfoError::NulInValue(key) => {
                write!(f, "forbidden value %00 in the value of {key} in the connection URI")
            }
            ConninfoError::InvalidSslFlag => {
                f.write_str("invalid URI query parameter \"ssl\" (only ssl=true is accepted)")
            }
            ConninfoError::WeakModeWithSystemRoots(mode) => write!(
                f,
                "weak sslmode \"{mode}\" may not be used with sslrootcert=system (use \"verify-full\")"
            ),
            ConninfoError::NoHomeDirectory(mode) => write!(
                f,
                "sslmode={mode}: no home directory to locate the root certificate file \
                 ~/.postgresql/root.crt; give sslrootcert=FILE or sslrootcert=system"
            ),
        }
    }
}

impl std::error::Error for ConninfoError {}

fn shorten(v: &str) -> String {
    v.chars().take(40).collect()
}

/// A connection string split into the TLS settings and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The connection string without sslmode, sslrootcert (and a URI's ssl), in the same form;
    /// every other parameter exactly as written.
    pub rest: String,
    /// The last sslmode given, if any.
    pub sslmode: Option<SslMode>,
    /// The last non-empty sslrootcert given, if any (an empty value means "not given", as in
    /// libpq).
    pub sslrootcert: Option<String>,
}

/// Does libpq treat this string as a URI?
pub fn is_uri(conninfo: &str) -> bool {
    conninfo.starts_with("postgresql://") || conninfo.starts_with("postgres://")
}

/// Finds and removes `sslmode` and `sslrootcert` (see the module documentation).
pub fn extract(conninfo: &str) -> Result<Extracted, ConninfoError> {
    if is_uri(conninfo) {
        extract_uri(conninfo)
    } else {
        extract_key_value(conninfo)
    }
}

/// libpq's isspace() in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// The last value of each key, as libpq keeps it (and checks only that one).
#[derive(Default)]
struct Found {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

impl Found {
    fn record(&mut self, key: &str, value: String) {
        match key {
            "sslmode" => self.sslmode = Some(value),
            "sslrootcert" => self.sslrootcert = Some(value),
            _ => {}
        }
    }

    /// An invalid sslmode is an error; an empty sslrootcert means "not given", as in libpq.
    fn finish(self, rest: String) -> Result<Extracted, ConninfoError> {
        Ok(Extracted {
            rest,
            sslmode: self.sslmode.as_deref().map(SslMode::parse).transpose()?,
            sslrootcert: self.sslrootcert.filter(|v| !v.is_empty()),
        })
    }
}

fn extract_key_value(s: &str) -> Result<Extracted, ConninfoError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut kept: Vec<&str> = Vec::new();
    let mut found = Found::default();
    while i < b.len() {
        if is_space(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        // The name: up to '=' or whitespace (then only whitespace may come before '=').
        while i < b.len() && b[i] != b'=' && !is_space(b[i]) {
            i += 1;
        }
        let name = &s[start..i];
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(ConninfoError::MissingEquals(start));
        }
        i += 1;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        // The value, unescaped. Escapes only ever drop an ASCII backslash, so slicing at byte
        // positions of ASCII characters stays on char boundaries.
        let mut value: Vec<u8> = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                if i >= b.len() {
                    return Err(ConninfoError::UnterminatedQuote);
                }
                match b[i] {
                    b'\\' => {
                        i += 1;
                        if i < b.len() {
                            value.push(b[i]);
                            i += 1;
                        }
                    }
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && !is_space(b[i]) {
                if b[i] == b'\\' {
                    i += 1;
                    if i < b.len() {
                        value.push(b[i]);
                        i += 1;
                    }
                } else {
                    value.push(b[i]);
                    i += 1;
                }
            }
        }
        // The input is UTF-8 and only whole ASCII bytes were dropped, so this cannot fail;
        // stay total anyway.
        if name == "sslmode" || name == "sslrootcert" {
            found.record(name, String::from_utf8_lossy(&value).into_owned());
        } else {
            kept.push(&s[start..i]);
        }
    }
    found.finish(kept.join(" "))
}

/// Strict percent-decoding (as libpq: `%` must be followed by two hex digits), then UTF-8.
fn percent_decode(s: &str, key: &'static str) -> Result<String, ConninfoError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            let (Some(hi), Some(lo)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(ConninfoError::BadPercentEncoding(key));
            };
            let byte = (hi * 16 + lo) as u8;
            if byte == 0 {
                return Err(ConninfoError::NulInValue(key));
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ConninfoError::BadPercentEncoding(key))
}

fn extract_uri(s: &str) -> Result<Extracted, ConninfoError> {
    // tokio-postgres takes the credentials up to the first '@' of the whole string, and the
    // host and path each end at '?': so the query starts at the first '?' after that '@'.
    let after_credentials = s.find('@').map_or(0, |at| at + 1);
    let Some(q) = s[after_credentials..]
        .find('?')
        .map(|q| after_credentials + q)
    else {
        return Ok(Extracted {
            rest: s.to_owned(),
            sslmode: None,
            sslrootcert: None,
        });
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut found = Found::default();
    for param in s[q + 1..].split('&') {
        if param.is_empty() {
            continue;
        }
        let (raw_key, raw_value) = param.split_once('=').unwrap_or((param, ""));
        // Only our keys are decoded strictly; a key that does not decode is not one of them.
        let key = percent_decode(raw_key, "a key").unwrap_or_default();
        match key.as_str() {
            "sslmode" if param.contains('=') => {
                found.record("sslmode", percent_decode(raw_value, "sslmode")?);
            }
            "sslrootcert" if param.contains('=') => {
                found.record("sslrootcert", percent_decode(raw_value, "sslrootcert")?);
            }
            // libpq: ssl=true is sslmode=require (for JDBC-style URIs).
            "ssl" if param.contains('=') => {
                if percent_decode(raw_value, "ssl")? != "true" {
                    return Err(ConninfoError::InvalidSslFlag);
                }
                found.record("sslmode", "require".to_owned());
            }
            _ => kept.push(param),
        }
    }
    let mut rest = s[..q].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    found.finish(rest)
}

/// What the TLS handshake must check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Nothing about the certificate (the handshake's signatures are still checked).
    Nothing,
    /// The chain up to a trusted root, not the name.
    Chain,
    /// The chain, and that the certificate is for the host connected to.
    ChainAndName,
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// A PEM file of CA certificates.
    File(PathBuf),
    /// The operating system's trust store.
    System,
}

impl fmt::Display for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::File(p) => write!(f, "{}", p.display()),
            Roots::System => f.write_str("system"),
        }
    }
}

/// How the driver should negotiate TLS (tokio-postgres's three sslmodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiation {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it, else clear text.
    Prefer,
    /// TLS or no connection.
    Require,
}

/// What the client does, from sslmode and sslrootcert as libpq does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPlan {
    /// The sslmode in effect (the one given, or the default).
    pub sslmode: SslMode,
    pub negotiation: Negotiation,
    pub verify: Verify,
    /// The roots to verify against; `Some` exactly when `verify` is not `Nothing`.
    pub roots: Option<Roots>,
    /// sslmode=require with an sslrootcert file that does not exist: libpq then verifies
    /// nothing, silently. The caller should warn.
    pub missing_root_file: Option<PathBuf>,
}

/// libpq's default root certificate file, `~/.postgresql/root.crt`.
pub fn default_root_file(home: &Path) -> PathBuf {
    home.join(".postgresql").join("root.crt")
}

/// Decides the TLS behaviour (libpq 15's table, plus libpq 16's `sslrootcert=system`):
///
/// | sslmode | TLS | verifies |
/// |---|---|---|
/// | disable | never | - |
/// | prefer (default) | if offered | nothing |
/// | require | always | nothing; the chain if the root file exists (libpq's compatibility rule) |
/// | verify-ca | always | the chain |
/// | verify-full | always | the chain and the host name |
///
/// The root file is `sslrootcert`, or `~/.postgresql/root.crt` (`home`); `exists` says
/// whether a file exists (libpq uses stat()). `sslrootcert=system` makes the default sslmode
/// verify-full and refuses weaker ones, as libpq 16 does.
pub fn plan(
    sslmode: Option<SslMode>,
    sslrootcert: Option<&str>,
    home: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Result<TlsPlan, ConninfoError> {
    let system = sslrootcert == Some("system");
    let mode = sslmode.unwrap_or(if system {
        SslMode::VerifyFull
    } else {
        SslMode::Prefer
    });
    if system && mode != SslMode::VerifyFull {
        return Err(ConninfoError::WeakModeWithSystemRoots(mode));
    }
    let root_file = match sslrootcert {
        Some(f) if !system => Some(PathBuf::from(f)),
        _ => home.map(default_root_file),
    };
    let nothing = |negotiation, missing_root_file| TlsPlan {
        sslmode: mode,
        negotiation,
        verify: Verify::Nothing,
        roots: None,
        missing_root_file,
    };
    match mode {
        SslMode::Disable => Ok(nothing(Negotiation::Disable, None)),
        SslMode::Prefer => Ok(nothing(Negotiation::Prefer, None)),
        SslMode::Require => match root_file {
            Some(f) if exists(&f) => Ok(TlsPlan {
                sslmode: mode,
                negotiation: Negotiation::Require,
                verify: Verify::Chain,
                roots: Some(Roots::File(f)),
                missing_root_file: None,
            }),
            Some(f) if sslrootcert.is_some() => Ok(nothing(Negotiation::Require, Some(f))),
            _ => Ok(nothing(Negotiation::Require, None)),
        },
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = if system {
                Roots::System
            } else {
                Roots::File(root_file.ok_or(ConninfoError::NoHomeDirectory(mode))?)
            };
            Ok(TlsPlan {
                sslmode: mode,
                negotiation: Negotiation::Require,
                verify: if mode == SslMode::VerifyFull {
                    Verify::ChainAndName
                } else {
                    Verify::Chain
                },
                roots: Some(roots),
                missing_root_file: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str) -> Extracted {
        extract(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn kv(s: &str) -> (String, Option<SslMode>, Option<String>) {
        let e = ex(s);
        (e.rest, e.sslmode, e.sslrootcert)
    }

    #[test]
    fn key_value_plain() {
        assert_eq!(
            kv("host=localhost port=5432 sslmode=verify-full sslrootcert=/etc/ca.pem dbname=app"),
            (
                "host=localhost port=5432 dbname=app".into(),
                Some(SslMode::VerifyFull),
                Some("/etc/ca.pem".into())
            )
        );
        assert_eq!(
            kv("host=db user=web"),
            ("host=db user=web".into(), None, None)
        );
        assert_eq!(kv(""), ("".into(), None, None));
        assert_eq!(kv("   "), ("".into(), None, None));
        assert_eq!(
            kv("sslmode=require"),
            ("".into(), Some(SslMode::Require), None)
        );
    }

    #[test]
    fn key_value_every_mode() {
        for (v, m) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(ex(&format!("host=x sslmode={v}")).sslmode, Some(m));
            assert_eq!(m.as_str(), v);
            assert_eq!(SslMode::parse(v), Ok(m));
        }
    }

    #[test]
    fn key_value_whitespace_around_equals() {
        assert_eq!(
            kv("host = db  sslmode =  verify-ca\tsslrootcert=\n/ca.pem   user=u"),
            (
                "host = db user=u".into(),
                Some(SslMode::VerifyCa),
                Some("/ca.pem".into())
            )
        );
        // As in libpq, the value after "= " is the next word, even if it looks like a key.
        assert_eq!(
            kv("sslrootcert= sslmode=require"),
            ("".into(), None, Some("sslmode=require".into()))
        );
    }

    #[test]
    fn key_value_quoting_and_escapes() {
        assert_eq!(
            kv(r"host=db sslrootcert='/etc/my certs/ca.pem' password='it\'s'"),
            (
                r"host=db password='it\'s'".into(),
                None,
                Some("/etc/my certs/ca.pem".into())
            )
        );
        assert_eq!(
            ex(r"sslrootcert='/a\'b\\c.pem'").sslrootcert.as_deref(),
            Some(r"/a'b\c.pem")
        );
        assert_eq!(
            ex(r"sslrootcert=/a\ b.pem sslmode=require")
                .sslrootcert
                .as_deref(),
            Some("/a b.pem")
        );
        assert_eq!(
            ex(r"sslmode='verify-full'").sslmode,
            Some(SslMode::VerifyFull)
        );
        assert_eq!(
            ex(r"sslmode=verify\-full").sslmode,
            Some(SslMode::VerifyFull)
        );
        // A quoted value may be followed directly by the next parameter (libpq accepts it).
        assert_eq!(
            kv("sslmode='require'host=db"),
            ("host=db".into(), Some(SslMode::Require), None)
        );
        // Other parameters stay exactly as written, quotes and escapes included.
        assert_eq!(
            ex(r"password='a b\'c' sslmode=disable application_name=x\ y").rest,
            r"password='a b\'c' application_name=x\ y"
        );
        // A trailing backslash is dropped, as libpq does.
        assert_eq!(ex(r"sslrootcert=/ca\").sslrootcert.as_deref(), Some("/ca"));
        // Non-ASCII stays intact.
        assert_eq!(
            ex("sslrootcert='/zertifikäte/ca.pem' user=jürgen"),
            Extracted {
                rest: "user=jürgen".into(),
                sslmode: None,
                sslrootcert: Some("/zertifikäte/ca.pem".into())
            }
        );
    }

    #[test]
    fn key_value_quote_rules_as_libpq() {
        // No SQL-style doubled quote: after 'it' comes a parameter named 's' without '='.
        assert_eq!(
            extract("password='it''s'"),
            Err(ConninfoError::MissingEquals(13))
        );
        assert_eq!(ex("sslrootcert=''").sslrootcert, None);
        assert_eq!(ex("sslrootcert='' user=u").rest, "user=u");
        // A quote inside an unquoted value is an ordinary character.
        assert_eq!(
            ex("sslrootcert=/it's").sslrootcert.as_deref(),
            Some("/it's")
        );
        assert_eq!(
            extract("sslrootcert='/a"),
            Err(ConninfoError::UnterminatedQuote)
        );
        assert_eq!(
            extract(r"sslrootcert='/a\'"),
            Err(ConninfoError::UnterminatedQuote)
        );
    }

    #[test]
    fn key_value_last_wins_and_empty_resets() {
        assert_eq!(
            ex("sslmode=disable host=h sslmode=verify-full").sslmode,
            Some(SslMode::VerifyFull)
        );
        assert_eq!(
            ex("sslrootcert=/a sslrootcert=/b").sslrootcert.as_deref(),
            Some("/b")
        );
        assert_eq!(ex("sslrootcert=/a sslrootcert=''").sslrootcert, None);
        assert_eq!(ex("sslrootcert=/a sslrootcert=").sslrootcert, None);
        // Only the final value is checked, as in libpq.
        assert_eq!(
            ex("sslmode=bogus sslmode=require").sslmode,
            Some(SslMode::Require)
        );
        assert!(extract("sslmode=require sslmode=bogus").is_err());
    }

    #[test]
    fn key_value_errors_name_no_secret() {
        let e = extract("host=db password=hunter2 sslmode=verify_full").unwrap_err();
        assert_eq!(e, ConninfoError::InvalidSslMode("verify_full".into()));
        assert!(e.to_string().contains("\"verify_full\""), "{e}");
        assert!(!e.to_string().contains("hunter2"));
        assert_eq!(
            extract("sslmode=allow"),
            Err(ConninfoError::AllowUnsupported)
        );
        assert!(matches!(
            extract("sslmode=Require"),
            Err(ConninfoError::InvalidSslMode(_))
        ));
        assert_eq!(
            extract("sslmode="),
            Err(ConninfoError::InvalidSslMode(String::new()))
        );
        let e = extract("host=db password='hunter2").unwrap_err();
        assert_eq!(e, ConninfoError::UnterminatedQuote);
        assert!(!e.to_string().contains("hunter2"));
        let e = extract("host=db hunter2").unwrap_err();
        assert_eq!(e, ConninfoError::MissingEquals(8));
        assert!(!e.to_string().contains("hunter2"));
        assert_eq!(extract("host"), Err(ConninfoError::MissingEquals(0)));
        assert_eq!(extract("host x=y"), Err(ConninfoError::MissingEquals(0)));
        // A very long bogus value is cut in the message.
        let long = "x".repeat(500);
        let Err(ConninfoError::InvalidSslMode(v)) = extract(&format!("sslmode={long}")) else {
            panic!()
        };
        assert_eq!(v.len(), 40);
    }

    #[test]
    fn key_value_similar_names_are_not_ours() {
        assert_eq!(
            kv("sslmodex=1 xsslrootcert=2 sslcert=/c sslnegotiation=direct"),
            (
                "sslmodex=1 xsslrootcert=2 sslcert=/c sslnegotiation=direct".into(),
                None,
                None
            )
        );
        // A value that contains our key's name is not our key.
        assert_eq!(
            kv("application_name=sslmode=disable"),
            ("application_name=sslmode=disable".into(), None, None)
        );
        assert_eq!(
            kv(r"password='x sslmode=disable'"),
            (r"password='x sslmode=disable'".into(), None, None)
        );
    }

    #[test]
    fn uri_basic() {
        assert_eq!(
            kv("postgres://web@localhost:5432/app?sslmode=verify-full&sslrootcert=/etc/ca.pem"),
            (
                "postgres://web@localhost:5432/app".into(),
                Some(SslMode::VerifyFull),
                Some("/etc/ca.pem".into())
            )
        );
        assert_eq!(
            kv("postgresql://h/db?application_name=x&sslmode=require&connect_timeout=3"),
            (
                "postgresql://h/db?application_name=x&connect_timeout=3".into(),
                Some(SslMode::Require),
                None
            )
        );
        assert_eq!(
            kv("postgres://h/db"),
            ("postgres://h/db".into(), None, None)
        );
        assert_eq!(
            kv("postgres://h/db?"),
            ("postgres://h/db".into(), None, None)
        );
        assert_eq!(
            kv("postgres://h?sslmode=disable"),
            ("postgres://h".into(), Some(SslMode::Disable), None)
        );
        assert_eq!(kv("postgres://"), ("postgres://".into(), None, None));
    }

    #[test]
    fn uri_percent_decoding() {
        assert_eq!(
            ex("postgres://h/db?sslrootcert=%2Fetc%2Fmy%20certs%2Fca.pem").sslrootcert,
            Some("/etc/my certs/ca.pem".into())
        );
        assert_eq!(
            ex("postgres://h/db?sslrootcert=/z%C3%A4/ca+1.pem").sslrootcert,
            Some("/zä/ca+1.pem".into()),
            "'+' is not a space in libpq URIs"
        );
        assert_eq!(
            ex("postgres://h/db?ssl%6dode=verify%2dca").sslmode,
            Some(SslMode::VerifyCa)
        );
        assert_eq!(
            extract("postgres://h/db?sslrootcert=%2"),
            Err(ConninfoError::BadPercentEncoding("sslrootcert"))
        );
        assert_eq!(
            extract("postgres://h/db?sslrootcert=%zz"),
            Err(ConninfoError::BadPercentEncoding("sslrootcert"))
        );
        assert_eq!(
            extract("postgres://h/db?sslrootcert=%ff"),
            Err(ConninfoError::BadPercentEncoding("sslrootcert"))
        );
        assert_eq!(
            extract("postgres://h/db?sslrootcert=a%00b"),
            Err(ConninfoError::NulInValue("sslrootcert"))
        );
        // Other keys' encodings are the driver's business and stay as written.
        assert_eq!(
            ex("postgres://h/db?application_name=%zz&sslmode=require").rest,
            "postgres://h/db?application_name=%zz"
        );
    }

    #[test]
    fn uri_last_wins_ssl_true_and_errors() {
        assert_eq!(
            ex("postgres://h/db?sslmode=disable&sslmode=verify-full").sslmode,
            Some(SslMode::VerifyFull)
        );
        assert_eq!(
            ex("postgres://h/db?sslrootcert=/a&sslrootcert=").sslrootcert,
            None
        );
        assert_eq!(
            kv("postgres://h/db?ssl=true&user=u"),
            (
                "postgres://h/db?user=u".into(),
                Some(SslMode::Require),
                None
            )
        );
        assert_eq!(
            extract("postgres://h/db?ssl=false"),
            Err(ConninfoError::InvalidSslFlag)
        );
        assert_eq!(
            extract("postgres://h/db?sslmode=verify_ca"),
            Err(ConninfoError::InvalidSslMode("verify_ca".into()))
        );
        assert_eq!(
            extract("postgresql://h/db?sslmode=allow"),
            Err(ConninfoError::AllowUnsupported)
        );
        // Empty parameters are dropped; one without '=' is left for the driver to refuse.
        assert_eq!(
            ex("postgres://h/db?&sslmode=require&&user=u&").rest,
            "postgres://h/db?user=u"
        );
        assert_eq!(
            ex("postgres://h/db?sslmode&user=u").rest,
            "postgres://h/db?sslmode&user=u"
        );
    }

    #[test]
    fn uri_question_mark_in_credentials() {
        // tokio-postgres reads credentials up to the first '@': a '?' before it is part of the
        // password, not the start of the query.
        let e = ex("postgres://web:pa?ss@localhost/db?sslmode=require");
        assert_eq!(e.rest, "postgres://web:pa?ss@localhost/db");
        assert_eq!(e.sslmode, Some(SslMode::Require));
        let e = ex("postgres://web:pa?sslmode=disable@localhost/db");
        assert_eq!(e.rest, "postgres://web:pa?sslmode=disable@localhost/db");
        assert_eq!(e.sslmode, None);
    }

    #[test]
    fn not_a_uri_without_the_exact_prefix() {
        assert!(!is_uri(" postgres://h"));
        assert!(!is_uri("POSTGRES://h"));
        assert!(is_uri("postgresql://"));
        // Read as key=value: one parameter named "pg://h/db?sslmode", not ours, left for the
        // driver to refuse as unknown (libpq refuses it too).
        assert_eq!(
            kv("pg://h/db?sslmode=require"),
            ("pg://h/db?sslmode=require".into(), None, None)
        );
    }

    #[test]
    fn never_panics_on_short_strings_of_awkward_characters() {
        let alphabet = [
            "s",
            "=",
            "'",
            "\\",
            " ",
            "é",
            "?",
            "&",
            "%",
            "@",
            "sslmode=",
            "sslrootcert=",
            "%2",
        ];
        let mut n = 0;
        for prefix in ["", "postgres://", "postgresql://u@h/d?"] {
            for a in alphabet {
                for b in alphabet {
                    for c in alphabet {
                        for d in alphabet {
                            let input = format!("{prefix}{a}{b}{c}{d}");
                            if let Ok(e) = extract(&input) {
                                // Taking the keys out again finds none and changes nothing.
                                let again = extract(&e.rest).unwrap_or_else(|err| {
                                    panic!("{input:?} -> {:?}: {err}", e.rest)
                                });
                                assert_eq!(again.rest, e.rest, "{input:?}");
                                assert_eq!((again.sslmode, again.sslrootcert), (None, None));
                            }
                            n += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(n, 3 * 13usize.pow(4));
    }

    fn no_files(_: &Path) -> bool {
        false
    }
    fn all_files(_: &Path) -> bool {
        true
    }
    fn home() -> Option<&'static Path> {
        Some(Path::new("/home/gw"))
    }

    #[test]
    fn plan_defaults_to_prefer_without_verification() {
        let p = plan(None, None, home(), all_files).unwrap();
        assert_eq!(p.sslmode, SslMode::Prefer);
        assert_eq!(p.negotiation, Negotiation::Prefer);
        assert_eq!(p.verify, Verify::Nothing);
        assert_eq!(p.roots, None);
        let p = plan(Some(SslMode::Prefer), Some("/ca.pem"), home(), all_files).unwrap();
        assert_eq!((p.verify, p.roots), (Verify::Nothing, None));
    }

    #[test]
    fn plan_disable() {
        let p = plan(Some(SslMode::Disable), Some("/ca.pem"), home(), all_files).unwrap();
        assert_eq!(
            (p.negotiation, p.verify, p.roots),
            (Negotiation::Disable, Verify::Nothing, None)
        );
    }

    #[test]
    fn plan_require_verifies_the_chain_when_a_root_file_exists() {
        let p = plan(Some(SslMode::Require), None, home(), no_files).unwrap();
        assert_eq!(
            (p.negotiation, p.verify, &p.roots, &p.missing_root_file),
            (Negotiation::Require, Verify::Nothing, &None, &None)
        );
        let p = plan(Some(SslMode::Require), Some("/ca.pem"), home(), all_files).unwrap();
        assert_eq!(p.verify, Verify::Chain);
        assert_eq!(p.roots, Some(Roots::File("/ca.pem".into())));
        assert_eq!(p.sslmode, SslMode::Require);
        // The default file counts too, as in libpq.
        let p = plan(Some(SslMode::Require), None, home(), all_files).unwrap();
        assert_eq!(
            p.roots,
            Some(Roots::File("/home/gw/.postgresql/root.crt".into()))
        );
        // A named file that does not exist: libpq verifies nothing; the caller is told.
        let p = plan(Some(SslMode::Require), Some("/gone.pem"), home(), no_files).unwrap();
        assert_eq!(p.verify, Verify::Nothing);
        assert_eq!(p.missing_root_file, Some("/gone.pem".into()));
        // No home directory: nothing to look for.
        let p = plan(Some(SslMode::Require), None, None, all_files).unwrap();
        assert_eq!(p.verify, Verify::Nothing);
    }

    #[test]
    fn plan_verify_modes() {
        let p = plan(Some(SslMode::VerifyCa), Some("/ca.pem"), home(), no_files).unwrap();
        assert_eq!(
            (p.negotiation, p.verify, p.roots),
            (
                Negotiation::Require,
                Verify::Chain,
                Some(Roots::File("/ca.pem".into()))
            )
        );
        let p = plan(Some(SslMode::VerifyFull), None, home(), no_files).unwrap();
        assert_eq!(
            (p.verify, p.roots),
            (
                Verify::ChainAndName,
                Some(Roots::File("/home/gw/.postgresql/root.crt".into()))
            )
        );
        assert_eq!(
            plan(Some(SslMode::VerifyCa), None, None, all_files),
            Err(ConninfoError::NoHomeDirectory(SslMode::VerifyCa))
        );
    }

    #[test]
    fn plan_system_roots() {
        let p = plan(None, Some("system"), home(), no_files).unwrap();
        assert_eq!(
            (p.sslmode, p.verify, p.roots),
            (
                SslMode::VerifyFull,
                Verify::ChainAndName,
                Some(Roots::System)
            )
        );
        let p = plan(Some(SslMode::VerifyFull), Some("system"), None, no_files).unwrap();
        assert_eq!(p.roots, Some(Roots::System));
        for weak in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
        ] {
            assert_eq!(
                plan(Some(weak), Some("system"), home(), all_files),
                Err(ConninfoError::WeakModeWithSystemRoots(weak))
            );
        }
        assert_eq!(Roots::System.to_string(), "system");
    }
}
