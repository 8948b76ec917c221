//! Validation of the arguments apps pass in (purpose names, subjects, sizes). Each failure names
//! the argument, so the SQL layer can turn it into a clear error with a specific SQLSTATE.

use std::fmt;

/// Longest purpose name (a PostgreSQL identifier's length).
pub const MAX_PURPOSE_LEN: usize = 63;
/// Longest subject, in bytes.
pub const MAX_SUBJECT_LEN: usize = 1024;
/// Largest payload, in bytes of its stored (uncompressed) jsonb form.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// A rejected argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The argument is NULL where a value is required (SQLSTATE 22004).
    Null(&'static str),
    /// The argument has a value that is not allowed (SQLSTATE 22023).
    Invalid(&'static str, String),
}

impl InputError {
    pub fn argument(&self) -> &'static str {
        match self {
            InputError::Null(a) | InputError::Invalid(a, _) => a,
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Null(arg) => write!(f, "{arg} must not be NULL"),
            InputError::Invalid(arg, why) => write!(f, "{arg} {why}"),
        }
    }
}

/// The value of a required argument, or the 22004 error naming it.
pub fn required<T>(arg: &'static str, value: Option<T>) -> Result<T, InputError> {
    value.ok_or(InputError::Null(arg))
}

/// Purpose names: 1 to 63 characters, lower-case ASCII letters, digits and `_`, starting with a
/// letter. They appear in URLs (`/code/{purpose}`) and logs, so they are kept plain.
pub fn purpose_name(arg: &'static str, name: &str) -> Result<(), InputError> {
    if name.is_empty() {
        return Err(InputError::Invalid(arg, "must not be empty".into()));
    }
    if name.len() > MAX_PURPOSE_LEN {
        return Err(InputError::Invalid(
            arg,
            format!("must be at most {MAX_PURPOSE_LEN} characters"),
        ));
    }
    let mut chars = name.bytes();
    let first_ok = chars.next().is_some_and(|b| b.is_ascii_lowercase());
    if !first_ok || !chars.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(InputError::Invalid(
            arg,
            "must start with a lower-case letter and contain only a-z, 0-9 and _".into(),
        ));
    }
    Ok(())
}

/// Subjects: whatever identifies the user or address for the app, 1 to 1024 bytes, no control
/// characters (they would corrupt logs).
pub fn subject(arg: &'static str, subject: &str) -> Result<(), InputError> {
    if subject.trim().is_empty() {
        return Err(InputError::Invalid(arg, "must not be empty".into()));
    }
    if subject.len() > MAX_SUBJECT_LEN {
        return Err(InputError::Invalid(
            arg,
            format!("must be at most {MAX_SUBJECT_LEN} bytes"),
        ));
    }
    if subject.chars().any(char::is_control) {
        return Err(InputError::Invalid(
            arg,
            "must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// Payload size limit.
pub fn payload_size(arg: &'static str, bytes: usize) -> Result<(), InputError> {
    if bytes > MAX_PAYLOAD_BYTES {
        return Err(InputError::Invalid(
            arg,
            format!("is {bytes} bytes, more than the limit of {MAX_PAYLOAD_BYTES} bytes (64 KiB)"),
        ));
    }
    Ok(())
}

/// Use limits: NULL (unlimited) or a positive count.
pub fn max_uses(arg: &'static str, value: Option<i32>) -> Result<(), InputError> {
    match value {
        Some(n) if n <= 0 => Err(InputError::Invalid(
            arg,
            format!("must be positive or NULL for unlimited, not {n}"),
        )),
        _ => Ok(()),
    }
}

/// A browser's bind value (the random cookie an app sets when someone asks for a link):
/// 16 to 256 URL- and cookie-safe characters.
pub fn bind_value(arg: &'static str, bind: &str) -> Result<(), InputError> {
    let ok_chars = bind
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b'~');
    if !(16..=256).contains(&bind.len()) || !ok_chars {
        return Err(InputError::Invalid(
            arg,
            "must be 16 to 256 characters from A-Z, a-z, 0-9, - _ . ~ (a random value, e.g. a token)".into(),
        ));
    }
    Ok(())
}

/// The key under which requests for an identifier (what a person typed into a request form)
/// are counted: SHA-256 of `purpose:` and the identifier as people type it in different ways
/// (case, surrounding spaces). Identifiers that match no one are counted too, so only this hash
/// is ever stored.
pub fn identifier_key(purpose: &str, identifier: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(purpose.as_bytes());
    h.update(b":");
    h.update(identifier.trim().to_lowercase().as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_keys_ignore_case_and_surrounding_spaces() {
        let k = identifier_key("login", "Anna@Example.org");
        assert_eq!(k, identifier_key("login", "  anna@example.org "));
        assert_ne!(k, identifier_key("login", "anna@example.com"));
        assert_ne!(k, identifier_key("signup", "anna@example.org"));
    }

    #[test]
    fn purpose_names() {
        assert!(purpose_name("name", "password_reset").is_ok());
        assert!(purpose_name("name", "phq9").is_ok());
        for bad in ["", "Reset", "9lives", "a-b", "a b", "é", "_x"] {
            let e = purpose_name("name", bad).unwrap_err();
            assert_eq!(e.argument(), "name", "{bad}");
        }
        assert!(purpose_name("name", &"a".repeat(63)).is_ok());
        assert!(purpose_name("name", &"a".repeat(64)).is_err());
    }

    #[test]
    fn subjects() {
        assert!(subject("subject", "user:42").is_ok());
        assert!(subject("subject", "anna@example.org").is_ok());
        assert!(subject("subject", "").is_err());
        assert!(subject("subject", "   ").is_err());
        assert!(subject("subject", "a\nb").is_err());
        assert!(subject("subject", &"x".repeat(1025)).is_err());
        assert!(subject("subject", &"x".repeat(1024)).is_ok());
    }

    #[test]
    fn messages_name_the_argument() {
        assert_eq!(
            required::<i32>("ttl", None).unwrap_err().to_string(),
            "ttl must not be NULL"
        );
        assert!(payload_size("payload", 70_000)
            .unwrap_err()
            .to_string()
            .starts_with("payload is 70000 bytes"));
        assert!(payload_size("payload", 65_536).is_ok());
        assert!(max_uses("max_uses", Some(0)).is_err());
        assert!(max_uses("max_uses", Some(-3)).is_err());
        assert!(max_uses("max_uses", None).is_ok());
        assert!(max_uses("max_uses", Some(1)).is_ok());
    }
}
