//! The mails the mailer sends (`linktoken-gateway mailer`), as pure logic: templates with
//! `{placeholder}`s rendered to a subject, a text part and an HTML part (values HTML-escaped in
//! the HTML part), the retry schedule, the private key file's format, Message-IDs, and the
//! scrubbing of error texts before they reach a log or the outbox.
//!
//! Placeholders: `{link}` (`{public_url}/t/{token}`), `{code}` and `{code_url}`
//! (`{public_url}/code/{purpose}`) for purposes with typed codes, `{expires}` (the token's
//! expiry, UTC), `{expires_in}` (e.g. "15 minutes"), `{subject}` (the outbox's mail_subject)
//! and `{purpose}`. A line that uses `{code}` or `{code_url}` is left out of a mail without a
//! code. Anything else in braces is kept as written, except `{word}` with an unknown word,
//! which is refused when the template is loaded (a typo would otherwise reach every mail).

use crate::mailbox::KEY_BYTES;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "link",
    "code",
    "code_url",
    "expires",
    "expires_in",
    "subject",
    "purpose",
];

/// Placeholders whose line is dropped when the message has no code.
const CODE_PLACEHOLDERS: &[&str] = &["code", "code_url"];

/// The values of one mail's placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub link: String,
    pub code: Option<String>,
    pub code_url: String,
    pub expires: String,
    pub expires_in: String,
    pub subject: String,
    pub purpose: String,
}

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        Some(match name {
            "link" => &self.link,
            "code" => self.code.as_deref()?,
            "code_url" => {
                self.code.as_ref()?;
                &self.code_url
            }
            "expires" => &self.expires,
            "expires_in" => &self.expires_in,
            "subject" => &self.subject,
            "purpose" => &self.purpose,
            _ => return None,
        })
    }
}

/// A template that does not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One piece of a parsed template part.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(&'static str),
}

/// A template part, parsed into lines of pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    lines: Vec<Vec<Piece>>,
}

impl Part {
    fn parse(source: &str, what: &str) -> Result<Part, TemplateError> {
        let lines = source
            .split('\n')
            .map(|line| parse_line(line, what))
            .collect::<Result<_, _>>()?;
        Ok(Part { lines })
    }

    fn render(&self, fields: &Fields, escape: fn(&str) -> String) -> String {
        let mut out = Vec::with_capacity(self.lines.len());
        for line in &self.lines {
            let mut text = String::new();
            let mut dropped = false;
            for piece in line {
                match piece {
                    Piece::Text(t) => text.push_str(t),
                    Piece::Field(name) => match fields.get(name) {
                        Some(value) => text.push_str(&escape(value)),
                        None => {
                            dropped = CODE_PLACEHOLDERS.contains(name);
                            if dropped {
                                break;
                            }
                        }
                    },
                }
            }
            if !dropped {
                out.push(text);
            }
        }
        out.join("\n")
    }
}

/// Splits one line into text and known placeholders. `{word}` (a-z and _) must be a known
/// placeholder; other braces are text.
fn parse_line(line: &str, what: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('{') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let word_len = after
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        if word_len > 0 && after[word_len..].starts_with('}') {
            let word = &after[..word_len];
            let Some(known) = PLACEHOLDERS.iter().find(|p| **p == word) else {
                return Err(TemplateError(format!(
                    "{what}: unknown placeholder {{{word}}} (known: {})",
                    PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )));
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Field(known));
            rest = &after[word_len + 1..];
        } else {
            text.push('{');
            rest = after;
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// A mail template: subject line, text part, HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    subject: Part,
    text: Part,
    html: Part,
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub const DEFAULT_SUBJECT: &str = "{subject}";

pub const DEFAULT_TEXT: &str = "\
{subject}

Open this link to continue:
{link}

Or enter the code {code} at {code_url}

The link works until {expires} (for about {expires_in} from now) and only once.
If you did not ask for this, ignore this mail: nothing happens without the link.
";

pub const DEFAULT_HTML: &str = "\
<!DOCTYPE html>
<html>
<body style=\"font-family: sans-serif; line-height: 1.5\">
<p>{subject}</p>
<p><a href=\"{link}\">Open this link to continue</a></p>
<p style=\"word-break: break-all\">{link}</p>
<p>Or enter the code <strong style=\"font-size: 1.25em; letter-spacing: 0.1em\">{code}</strong> at <a href=\"{code_url}\">{code_url}</a></p>
<p>The link works until {expires} (for about {expires_in} from now) and only once.
If you did not ask for this, ignore this mail: nothing happens without the link.</p>
</body>
</html>
";

impl Template {
    /// Parses the three parts; `name` says where they came from, for errors.
    pub fn parse(
        name: &str,
        subject: &str,
        text: &str,
        html: &str,
    ) -> Result<Template, TemplateError> {
        let subject = subject.trim_end_matches(['\r', '\n']);
        if subject.contains('\n') {
            return Err(TemplateError(format!(
                "{name}.subject: the subject is one line"
            )));
        }
        Ok(Template {
            subject: Part::parse(subject, &format!("{name}.subject"))?,
            text: Part::parse(text, &format!("{name}.txt"))?,
            html: Part::parse(html, &format!("{name}.html"))?,
        })
    }

    /// The built-in template.
    pub fn builtin() -> Template {
        Template::parse("built-in", DEFAULT_SUBJECT, DEFAULT_TEXT, DEFAULT_HTML)
            .expect("the built-in template parses")
    }

    /// Renders one mail. Each placeholder is replaced once (a value containing `{link}` stays
    /// as it is); values are HTML-escaped in the HTML part; the subject is one line without
    /// control characters.
    pub fn render(&self, fields: &Fields) -> Rendered {
        Rendered {
            subject: one_line(&self.subject.render(fields, |s| s.to_owned())),
            text: self.text.render(fields, |s| s.to_owned()),
            html: self.html.render(fields, html_escape),
        }
    }
}

/// Text safe inside HTML elements and quoted attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Control characters (CR and LF included) become spaces; runs of spaces collapse; trimmed.
pub fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c == ' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// "15 minutes", "1 hour", "3 days": roughly how long `seconds` is, rounded down to the
/// largest unit (at least "1 minute").
pub fn expires_in(seconds: i64) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    let minutes = (seconds / 60).max(1);
    if minutes < 120 {
        plural(minutes, "minute")
    } else if minutes < 48 * 60 {
        plural(minutes / 60, "hour")
    } else {
        plural(minutes / (24 * 60), "day")
    }
}

/// The wait before the next try after `attempts` failed attempts (1 = the first failed):
/// base, 2 × base, 4 × base, … capped at `max`.
pub fn backoff(attempts: u32, base: Duration, max: Duration) -> Duration {
    let doublings = attempts.saturating_sub(1).min(32);
    base.checked_mul(1u32 << doublings.min(31))
        .map_or(max, |d| d.min(max))
}

/// A Message-ID for an outbox message: the same for every attempt at one message (so a
/// receiver can recognize a mail sent twice), derived from the sealed bytes (a hash of
/// ciphertext: it reveals nothing), at the sender's domain.
pub fn message_id(sealed: &[u8], domain: &str) -> String {
    let digest = Sha256::digest(sealed);
    format!("<{}.linktoken@{domain}>", hex::encode(&digest[..16]))
}

/// An error text fit for a log line and the outbox's last_error: every occurrence of a secret
/// (the address, token, code) replaced by a placeholder, one line, at most 300 characters.
pub fn scrub(text: &str, secrets: &[(&str, &str)]) -> String {
    let mut out = one_line(text);
    for (secret, replacement) in secrets {
        if secret.is_empty() {
            continue;
        }
        out = replace_ignoring_case(&out, secret, replacement);
    }
    match out.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &out[..i]),
        None => out,
    }
}

fn replace_ignoring_case(text: &str, needle: &str, replacement: &str) -> String {
    let lower_text = text.to_ascii_lowercase();
    let lower_needle = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower_text[at..].find(&lower_needle) {
        out.push_str(&text[at..at + found]);
        out.push_str(replacement);
        at += found + needle.len();
    }
    out.push_str(&text[at..]);
    out
}

/// The first line of a private key file.
pub const KEY_FILE_HEADER: &str = "# linktoken mailer private key (X25519). Keep it secret.";

/// A private key file's content: a comment line and the key as hex.
pub fn format_key_file(secret: &[u8; KEY_BYTES]) -> String {
    format!("{KEY_FILE_HEADER}\n{}\n", hex::encode(secret))
}

/// Why a key file was refused. Never quotes the file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileError {
    /// No key line.
    Empty,
    /// More than one key line.
    SeveralKeys,
    /// The key line is not 64 hex digits.
    NotHex,
}

impl std::fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyFileError::Empty => "no key in the file",
            KeyFileError::SeveralKeys => "more than one key line in the file",
            KeyFileError::NotHex => "the key is not 64 hex digits (32 bytes)",
        })
    }
}

/// Reads a key file: lines starting with `#` and blank lines are ignored; exactly one line of
/// 64 hex digits is the key.
pub fn parse_key_file(text: &str) -> Result<[u8; KEY_BYTES], KeyFileError> {
    let mut keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = keys.next().ok_or(KeyFileError::Empty)?;
    if keys.next().is_some() {
        return Err(KeyFileError::SeveralKeys);
    }
    let mut key = [0u8; KEY_BYTES];
    hex::decode_to_slice(line, &mut key).map_err(|_| KeyFileError::NotHex)?;
    Ok(key)
}

/// The `.pub` file's content: the public key as hex, one line.
pub fn format_public_key(public: &[u8; KEY_BYTES]) -> String {
    format!("{}\n", hex::encode(public))
}

/// The SQL that makes the database seal messages to this public key.
pub fn set_key_sql(public: &[u8; KEY_BYTES]) -> String {
    format!(
        "SELECT linktoken.set_mailer_key(decode('{}', 'hex'));",
        hex::encode(public)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(code: Option<&str>) -> Fields {
        Fields {
            link: "https://links.example/t/ltk_abc".into(),
            code: code.map(str::to_owned),
            code_url: "https://links.example/code/login".into(),
            expires: "2030-01-01 12:00 UTC".into(),
            expires_in: "15 minutes".into(),
            subject: "Sign in".into(),
            purpose: "login".into(),
        }
    }

    #[test]
    fn builtin_template_has_link_code_and_expiry_in_both_parts() {
        let m = Template::builtin().render(&fields(Some("493027")));
        assert_eq!(m.subject, "Sign in");
        for part in [&m.text, &m.html] {
            assert!(part.contains("https://links.example/t/ltk_abc"), "{part}");
            assert!(part.contains("493027"), "{part}");
            assert!(part.contains("https://links.example/code/login"), "{part}");
            assert!(part.contains("2030-01-01 12:00 UTC"), "{part}");
            assert!(part.contains("15 minutes"), "{part}");
        }
        assert!(m
            .html
            .contains("<a href=\"https://links.example/t/ltk_abc\">"));
    }

    #[test]
    fn lines_with_the_code_are_left_out_without_a_code() {
        let m = Template::builtin().render(&fields(None));
        for part in [&m.text, &m.html] {
            assert!(!part.contains("code"), "{part}");
            assert!(part.contains("https://links.example/t/ltk_abc"), "{part}");
        }
    }

    #[test]
    fn html_escapes_values_and_text_keeps_them() {
        let mut f = fields(None);
        f.subject = "<script>alert('x')</script> & \"more\"".into();
        f.link = "https://links.example/t/\"><script>".into();
        let m = Template::builtin().render(&f);
        assert!(!m.html.contains("<script>"), "{}", m.html);
        assert!(m
            .html
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"));
        assert!(m
            .html
            .contains("href=\"https://links.example/t/&quot;&gt;&lt;script&gt;\""));
        assert!(m.text.contains("<script>alert('x')</script>"));
        assert_eq!(m.subject, "<script>alert('x')</script> & \"more\"");
    }

    #[test]
    fn placeholders_are_replaced_once() {
        let mut f = fields(Some("123456"));
        f.subject = "{link} {code}".into();
        let t = Template::parse("t", "{subject}", "{subject}|{link}", "{subject}").unwrap();
        let m = t.render(&f);
        assert_eq!(m.subject, "{link} {code}");
        assert_eq!(m.text, "{link} {code}|https://links.example/t/ltk_abc");
    }

    #[test]
    fn other_braces_are_text_and_unknown_placeholders_are_refused() {
        let t = Template::parse(
            "t",
            "{purpose}: {subject}",
            "a { b } {} {X} {{link}}",
            "<style>p { color: red }</style>",
        )
        .unwrap();
        let m = t.render(&fields(None));
        assert_eq!(m.subject, "login: Sign in");
        assert_eq!(m.text, "a { b } {} {X} {https://links.example/t/ltk_abc}");
        assert_eq!(m.html, "<style>p { color: red }</style>");
        let e = Template::parse("login", "x", "Hi {nmae}", "").unwrap_err();
        assert!(e.0.contains("login.txt") && e.0.contains("{nmae}"), "{e}");
        let e = Template::parse("login", "a\nb", "", "").unwrap_err();
        assert!(e.0.contains("one line"), "{e}");
    }

    #[test]
    fn subjects_are_one_line() {
        let mut f = fields(None);
        f.subject = "Sign in\r\nBcc: eve@example.org\t now".into();
        let m = Template::builtin().render(&f);
        assert_eq!(m.subject, "Sign in Bcc: eve@example.org now");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_secs(30);
        let max = Duration::from_secs(3600);
        let waits: Vec<u64> = (1..=9).map(|a| backoff(a, base, max).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(0, base, max), base);
        assert_eq!(backoff(u32::MAX, base, max), max);
        assert_eq!(
            backoff(40, Duration::from_secs(u64::MAX / 2), Duration::MAX),
            Duration::MAX
        );
    }

    #[test]
    fn expires_in_words() {
        assert_eq!(expires_in(0), "1 minute");
        assert_eq!(expires_in(59), "1 minute");
        assert_eq!(expires_in(15 * 60 + 5), "15 minutes");
        assert_eq!(expires_in(3 * 3600), "3 hours");
        assert_eq!(expires_in(3 * 86400), "3 days");
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_are_refused_without_quoting_them() {
        let (secret, public) = crate::mailbox::keypair();
        let text = format_key_file(&secret);
        assert!(text.starts_with(KEY_FILE_HEADER));
        assert_eq!(parse_key_file(&text), Ok(secret));
        assert_eq!(parse_key_file("# c\n\n"), Err(KeyFileError::Empty));
        assert_eq!(
            parse_key_file(&format!("{text}{}\n", hex::encode(secret))),
            Err(KeyFileError::SeveralKeys)
        );
        let bad = "zz".repeat(32);
        assert_eq!(parse_key_file(&bad), Err(KeyFileError::NotHex));
        assert!(!KeyFileError::NotHex.to_string().contains("zz"));
        assert_eq!(parse_key_file(&"ab".repeat(31)), Err(KeyFileError::NotHex));
        let pubtext = format_public_key(&public);
        assert_eq!(pubtext.trim().len(), 64);
        assert_eq!(
            set_key_sql(&public),
            format!(
                "SELECT linktoken.set_mailer_key(decode('{}', 'hex'));",
                pubtext.trim()
            )
        );
    }

    #[test]
    fn message_ids_are_stable_per_message_and_hide_the_content() {
        let a = message_id(b"sealed one", "example.org");
        assert_eq!(a, message_id(b"sealed one", "example.org"));
        assert_ne!(a, message_id(b"sealed two", "example.org"));
        assert!(a.starts_with('<') && a.ends_with("@example.org>"));
        assert!(!a.contains("sealed"));
    }

    #[test]
    fn scrub_hides_secrets_in_any_case_and_bounds_the_text() {
        let text = "550 5.1.1 <Anna@Example.org>: no such user\r\n (ltk_abc, 493027)";
        let s = scrub(
            text,
            &[
                ("anna@example.org", "<address>"),
                ("ltk_abc", "<token>"),
                ("493027", "<code>"),
                ("", "<nothing>"),
            ],
        );
        assert_eq!(s, "550 5.1.1 <<address>>: no such user (<token>, <code>)");
        let long = scrub(&"é".repeat(1000), &[]);
        assert_eq!(long.chars().count(), 301);
    }
}
