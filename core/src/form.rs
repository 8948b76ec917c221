//! Parsing of submitted form bodies: `application/x-www-form-urlencoded` and
//! `multipart/form-data` (RFC 7578), both into a JSON object of field name -> string value.
//!
//! Pure and panic-free on any input: the gateway feeds it whatever a client sends (after the
//! body-size limit). Repeated field names: the **last** value wins, in both encodings (the pages
//! the gateway renders never repeat a name). File parts of multipart bodies are skipped.

use serde_json::{Map, Value};
use std::fmt;

/// Most fields (name/value pairs or multipart parts, including repeated names and skipped file
/// parts) a form body may carry.
pub const MAX_FIELDS: usize = 200;

/// Longest multipart boundary (RFC 2046).
const MAX_BOUNDARY: usize = 70;

/// Why a form body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// No Content-Type, or one that is neither urlencoded nor multipart/form-data (or a
    /// charset other than UTF-8): the gateway answers 415.
    UnsupportedType,
    /// The body (or its Content-Type parameters) cannot be parsed; the text says why.
    Malformed(&'static str),
    /// More than [`MAX_FIELDS`] fields.
    TooManyFields,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::UnsupportedType => f.write_str("unsupported form content type"),
            FormError::Malformed(why) => write!(f, "malformed form body: {why}"),
            FormError::TooManyFields => write!(f, "form has more than {MAX_FIELDS} fields"),
        }
    }
}

impl std::error::Error for FormError {}

/// Parses a form body.
///
/// `content_type` is the raw Content-Type header value (may be None). Supported:
/// `application/x-www-form-urlencoded` (optionally with `charset=UTF-8`) and
/// `multipart/form-data; boundary=…` (boundary quoted or not). Media types are matched
/// case-insensitively; anything else, or a charset other than UTF-8, gives
/// [`FormError::UnsupportedType`].
///
/// Returns field name -> string value. Repeated names: the **last** value wins. Multipart
/// parts that are files (`filename=` or `filename*=` in Content-Disposition) are ignored.
/// Names and values must be valid UTF-8 without NUL characters, else [`FormError::Malformed`].
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, FormError> {
    parse_counted(content_type, body).map(|(form, _)| form)
}

/// [`parse`], and how many fields the body carried before repeated names were folded into
/// one (empty `&&` pairs not counted, skipped file parts counted). The gateway needs it to tell
/// the exact RFC 8058 body (`List-Unsubscribe=One-Click` and nothing else) from bodies that
/// merely parse to it.
pub fn parse_counted(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(Map<String, Value>, usize), FormError> {
    let content_type = content_type.ok_or(FormError::UnsupportedType)?;
    let (media, params) = match content_type.split_once(';') {
        Some((media, params)) => (media.trim(), params),
        None => (content_type.trim(), ""),
    };
    if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        let params = parse_params(params).map_err(FormError::Malformed)?;
        if let Some((_, charset)) = params.iter().find(|(k, _)| k == "charset") {
            if !["utf-8", "utf8", "us-ascii"]
                .iter()
                .any(|c| charset.eq_ignore_ascii_case(c))
            {
                return Err(FormError::UnsupportedType);
            }
        }
        parse_urlencoded(body)
    } else if media.eq_ignore_ascii_case("multipart/form-data") {
        let params = parse_params(params).map_err(FormError::Malformed)?;
        let boundary = params
            .iter()
            .find(|(k, _)| k == "boundary")
            .map(|(_, v)| v.as_str())
            .ok_or(FormError::Malformed(
                "multipart Content-Type without boundary",
            ))?;
        if !boundary_ok(boundary) {
            return Err(FormError::Malformed("invalid multipart boundary"));
        }
        parse_multipart(boundary, body)
    } else {
        Err(FormError::UnsupportedType)
    }
}

fn insert(
    form: &mut Map<String, Value>,
    count: &mut usize,
    name: String,
    value: Option<String>,
) -> Result<(), FormError> {
    *count += 1;
    if *count > MAX_FIELDS {
        return Err(FormError::TooManyFields);
    }
    if name.contains('\0') {
        return Err(FormError::Malformed("NUL character in a field name"));
    }
    if let Some(value) = value {
        if value.contains('\0') {
            return Err(FormError::Malformed("NUL character in a field value"));
        }
        // Last value wins.
        form.insert(name, Value::String(value));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// application/x-www-form-urlencoded (WHATWG URL standard, strict UTF-8)

fn parse_urlencoded(body: &[u8]) -> Result<(Map<String, Value>, usize), FormError> {
    let mut form = Map::new();
    let mut count = 0;
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name = String::from_utf8(percent_decode(name))
            .map_err(|_| FormError::Malformed("field name is not valid UTF-8"))?;
        let value = String::from_utf8(percent_decode(value))
            .map_err(|_| FormError::Malformed("field value is not valid UTF-8"))?;
        insert(&mut form, &mut count, name, Some(value))?;
    }
    Ok((form, count))
}

/// `+` -> space, `%XX` -> byte; a `%` not followed by two hex digits stays as it is (WHATWG).
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).and_then(|&b| hex(b));
                let lo = input.get(i + 2).and_then(|&b| hex(b));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Header parameters: `; name=value; name="quoted \" value"` (Content-Type, Content-Disposition)

/// Parses the parameters after a header's main value (the text after its first `;`).
/// Names are lower-cased; quoted values are unquoted (`\x` -> `x`). An empty text or a
/// trailing `;` is fine; a parameter without `=` or an unterminated quote is not.
fn parse_params(s: &str) -> Result<Vec<(String, String)>, &'static str> {
    let mut params = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return Ok(params);
        }
        let eq = rest
            .find(['=', ';'])
            .filter(|&i| rest.as_bytes()[i] == b'=')
            .ok_or("header parameter without a value")?;
        let name = rest[..eq].trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err("header parameter without a name");
        }
        rest = rest[eq + 1..].trim_start_matches([' ', '\t']);
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, c)) => v.push(c),
                        None => break,
                    },
                    c => v.push(c),
                }
            }
            let end = end.ok_or("unterminated quoted header parameter")?;
            value = v;
            rest = quoted[end..].trim_start_matches([' ', '\t']);
            if !rest.is_empty() && !rest.starts_with(';') {
                return Err("text after a quoted header parameter");
            }
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim_end().to_owned();
            rest = &rest[end..];
        }
        params.push((name, value));
    }
}

// ---------------------------------------------------------------------------------------------
// multipart/form-data (RFC 7578 over RFC 2046)

/// RFC 2046: 1 to 70 characters from a restricted set, not ending in a space.
fn boundary_ok(b: &str) -> bool {
    !b.is_empty()
        && b.len() <= MAX_BOUNDARY
        && !b.ends_with(' ')
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The body is: optional preamble, `--boundary`, then parts each followed by `CRLF--boundary`,
/// the last delimiter being `--boundary--` (epilogue ignored). After each delimiter only
/// spaces/tabs may follow before the line break. Bare LF line breaks are accepted as well.
fn parse_multipart(boundary: &str, body: &[u8]) -> Result<(Map<String, Value>, usize), FormError> {
    // "\n--boundary": the delimiter as it appears after a part (its "\r" is stripped from the
    // part's end).
    let mut nl_delim = Vec::with_capacity(boundary.len() + 3);
    nl_delim.extend_from_slice(b"\n--");
    nl_delim.extend_from_slice(boundary.as_bytes());
    let delim = &nl_delim[1..];

    let mut pos = if body.starts_with(delim) {
        delim.len()
    } else {
        let i =
            find(body, &nl_delim).ok_or(FormError::Malformed("multipart boundary not found"))?;
        i + nl_delim.len()
    };

    let mut form = Map::new();
    let mut count = 0;
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            // Close delimiter; whatever follows is the epilogue.
            return Ok((form, count));
        }
        let pad = rest
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .unwrap_or(rest.len());
        let start = match &rest[pad..] {
            [b'\r', b'\n', ..] => pos + pad + 2,
            [b'\n', ..] => pos + pad + 1,
            [] => return Err(FormError::Malformed("missing closing multipart boundary")),
            _ => return Err(FormError::Malformed("invalid multipart delimiter line")),
        };
        let len = find(&body[start..], &nl_delim)
            .ok_or(FormError::Malformed("missing closing multipart boundary"))?;
        let part = &body[start..start + len];
        let part = part.strip_suffix(b"\r").unwrap_or(part);
        let (name, value) = parse_part(part)?;
        insert(&mut form, &mut count, name, value)?;
        pos = start + len + nl_delim.len();
    }
}

/// One part: header lines, a blank line, the value. Returns the name and the value (None for a
/// file part, which is counted but not kept).
fn parse_part(part: &[u8]) -> Result<(String, Option<String>), FormError> {
    let mut disposition: Option<String> = None;
    let mut i = 0;
    let value = loop {
        let nl = part[i..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(FormError::Malformed(
                "multipart part headers not ended by a blank line",
            ))?;
        let line = &part[i..i + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        i += nl + 1;
        if line.is_empty() {
            break &part[i..];
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // Obsolete header folding: continues the previous header.
            if let Some(d) = disposition.as_mut() {
                let more = std::str::from_utf8(line)
                    .map_err(|_| FormError::Malformed("multipart part header is not UTF-8"))?;
                d.push(' ');
                d.push_str(more.trim());
            }
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(FormError::Malformed("invalid multipart part header"))?;
        if line[..colon].eq_ignore_ascii_case(b"content-disposition") {
            if disposition.is_some() {
                return Err(FormError::Malformed(
                    "multipart part with two Content-Disposition headers",
                ));
            }
            let v = std::str::from_utf8(&line[colon + 1..])
                .map_err(|_| FormError::Malformed("multipart part header is not UTF-8"))?;
            disposition = Some(v.trim().to_owned());
        }
        // Other headers (Content-Type, …) do not matter for a form field.
    };
    let disposition = disposition.ok_or(FormError::Malformed(
        "multipart part without Content-Disposition",
    ))?;
    let (kind, params) = match disposition.split_once(';') {
        Some((kind, params)) => (kind.trim(), params),
        None => (disposition.trim(), ""),
    };
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(FormError::Malformed("multipart part is not form-data"));
    }
    let params = parse_params(params).map_err(FormError::Malformed)?;
    let name = params
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.clone())
        .ok_or(FormError::Malformed("multipart part without a name"))?;
    if params
        .iter()
        .any(|(k, _)| k == "filename" || k == "filename*")
    {
        return Ok((name, None));
    }
    let value = String::from_utf8(value.to_vec())
        .map_err(|_| FormError::Malformed("field value is not valid UTF-8"))?;
    Ok((name, Some(value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URLENC: Option<&str> = Some("application/x-www-form-urlencoded");

    fn ok(ct: Option<&str>, body: &[u8]) -> Value {
        Value::Object(parse(ct, body).unwrap_or_else(|e| panic!("{e:?}")))
    }

    /// A multipart body with CRLF line breaks, as browsers send it.
    fn multipart(boundary: &str, parts: &[(&str, &str)]) -> Vec<u8> {
        let mut body = String::new();
        for (headers, value) in parts {
            body.push_str(&format!("--{boundary}\r\n{headers}\r\n\r\n{value}\r\n"));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        body.into_bytes()
    }

    const B: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    const MP: &str = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW";

    #[test]
    fn urlencoded_basics() {
        assert_eq!(
            ok(
                URLENC,
                b"password=correct+horse%21&password2=x%2By&confirm=yes"
            ),
            json!({"password": "correct horse!", "password2": "x+y", "confirm": "yes"})
        );
        assert_eq!(ok(URLENC, b""), json!({}));
        assert_eq!(ok(URLENC, b"&&a=1&&"), json!({"a": "1"}));
        assert_eq!(ok(URLENC, b"flag&b="), json!({"flag": "", "b": ""}));
        assert_eq!(ok(URLENC, b"a=1=2"), json!({"a": "1=2"}));
        // Non-ASCII, percent-encoded and raw.
        assert_eq!(
            ok(URLENC, "n=%C3%A9t%C3%A9&m=été".as_bytes()),
            json!({"n": "été", "m": "été"})
        );
        // A lone % stays as it is (WHATWG).
        assert_eq!(
            ok(URLENC, b"p=100%&q=%zz&r=%4"),
            json!({"p": "100%", "q": "%zz", "r": "%4"})
        );
    }

    #[test]
    fn urlencoded_content_types() {
        for ct in [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "application/x-www-form-urlencoded;charset=utf-8",
            "Application/X-WWW-Form-Urlencoded ; charset=\"UTF-8\"",
            "application/x-www-form-urlencoded;",
        ] {
            assert_eq!(ok(Some(ct), b"a=b"), json!({"a": "b"}), "{ct}");
        }
        for ct in [
            "application/x-www-form-urlencoded; charset=ISO-8859-1",
            "application/json",
            "text/plain",
            "multipart/mixed; boundary=x",
            "",
            "application/x-www-form-urlencodedX",
        ] {
            assert_eq!(
                parse(Some(ct), b"a=b"),
                Err(FormError::UnsupportedType),
                "{ct}"
            );
        }
        assert_eq!(parse(None, b"a=b"), Err(FormError::UnsupportedType));
        assert!(matches!(
            parse(
                Some("application/x-www-form-urlencoded; charset=\"utf-8"),
                b"a=b"
            ),
            Err(FormError::Malformed(_))
        ));
    }

    #[test]
    fn repeated_names_last_value_wins() {
        assert_eq!(ok(URLENC, b"a=1&b=2&a=3"), json!({"a": "3", "b": "2"}));
        let body = multipart(
            B,
            &[
                ("Content-Disposition: form-data; name=\"a\"", "1"),
                ("Content-Disposition: form-data; name=\"a\"", "2"),
            ],
        );
        assert_eq!(ok(Some(MP), &body), json!({"a": "2"}));
    }

    #[test]
    fn urlencoded_rejects_bad_utf8_and_nul() {
        for body in [
            &b"a=%FF"[..],
            b"%C3=x",
            b"a=\xff",
            b"a=%C3",
            b"a=%00",
            b"a%00=x",
            b"a=x\0y",
        ] {
            assert!(
                matches!(parse(URLENC, body), Err(FormError::Malformed(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn too_many_fields() {
        let body = |n: usize| {
            (0..n)
                .map(|i| format!("f{i}=x"))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert_eq!(
            parse(URLENC, body(MAX_FIELDS).as_bytes()).unwrap().len(),
            MAX_FIELDS
        );
        assert_eq!(
            parse(URLENC, body(MAX_FIELDS + 1).as_bytes()),
            Err(FormError::TooManyFields)
        );
        // Repeats count too: they cost work just the same.
        assert_eq!(
            parse(URLENC, "a=1&".repeat(MAX_FIELDS + 1).as_bytes()),
            Err(FormError::TooManyFields)
        );
        let headers: Vec<String> = (0..=MAX_FIELDS)
            .map(|i| format!("Content-Disposition: form-data; name=\"f{i}\""))
            .collect();
        let parts: Vec<(&str, &str)> = headers.iter().map(|h| (h.as_str(), "x")).collect();
        assert_eq!(
            parse(Some(MP), &multipart(B, &parts[..MAX_FIELDS]))
                .unwrap()
                .len(),
            MAX_FIELDS
        );
        assert_eq!(
            parse(Some(MP), &multipart(B, &parts)),
            Err(FormError::TooManyFields)
        );
    }

    #[test]
    fn one_click_unsubscribe_in_both_encodings() {
        let want = json!({"List-Unsubscribe": "One-Click"});
        let url = parse(URLENC, b"List-Unsubscribe=One-Click").unwrap();
        assert_eq!(Value::Object(url.clone()), want);
        assert!(crate::submission::is_one_click(&url));

        let body = multipart(
            B,
            &[(
                "Content-Disposition: form-data; name=\"List-Unsubscribe\"",
                "One-Click",
            )],
        );
        let mp = parse(Some(MP), &body).unwrap();
        assert_eq!(Value::Object(mp.clone()), want);
        assert!(crate::submission::is_one_click(&mp));

        // As curl / common HTTP libraries send it: quoted boundary, part Content-Type.
        let body = b"--xYzZY\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOne-Click\r\n--xYzZY--\r\n";
        let mp = parse(Some("multipart/form-data; boundary=\"xYzZY\""), body).unwrap();
        assert_eq!(Value::Object(mp), want);
    }

    #[test]
    fn counted_fields_see_repeats_and_file_parts() {
        let count = |ct, body: &[u8]| parse_counted(ct, body).unwrap().1;
        assert_eq!(count(URLENC, b"List-Unsubscribe=One-Click"), 1);
        assert_eq!(count(URLENC, b"&List-Unsubscribe=One-Click&&"), 1);
        // Folded into one field by "last value wins", but two fields were sent.
        let (form, n) =
            parse_counted(URLENC, b"List-Unsubscribe=x&List-Unsubscribe=One-Click").unwrap();
        assert!(crate::submission::is_one_click(&form));
        assert_eq!(n, 2);
        let body = multipart(
            B,
            &[
                (
                    "Content-Disposition: form-data; name=\"List-Unsubscribe\"",
                    "One-Click",
                ),
                (
                    "Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"",
                    "data",
                ),
            ],
        );
        let (form, n) = parse_counted(Some(MP), &body).unwrap();
        assert!(
            crate::submission::is_one_click(&form),
            "the file part is skipped"
        );
        assert_eq!(n, 2, "but counted");
    }

    #[test]
    fn multipart_browser_body() {
        let body = multipart(
            B,
            &[
                ("Content-Disposition: form-data; name=\"password\"", "correct horse"),
                ("Content-Disposition: form-data; name=\"note\"", "line 1\r\nline 2\r\n"),
                ("Content-Disposition: form-data; name=\"empty\"", ""),
                ("Content-Disposition: form-data; name=\"name\"", "Zoë ✓"),
                (
                    "Content-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\nContent-Type: text/plain",
                    "file contents",
                ),
                (
                    "Content-Disposition: form-data; name=\"nofile\"; filename=\"\"\r\nContent-Type: application/octet-stream",
                    "",
                ),
            ],
        );
        assert_eq!(
            ok(Some(MP), &body),
            json!({"password": "correct horse", "note": "line 1\r\nline 2\r\n", "empty": "", "name": "Zoë ✓"})
        );
    }

    #[test]
    fn multipart_content_type_variants() {
        let body = multipart(
            "abc",
            &[("Content-Disposition: form-data; name=\"a\"", "1")],
        );
        for ct in [
            "multipart/form-data; boundary=abc",
            "multipart/form-data;boundary=abc",
            "Multipart/Form-Data; BOUNDARY=\"abc\"",
            "multipart/form-data; charset=utf-8; boundary=\"abc\"",
            "multipart/form-data; boundary=abc; charset=utf-8",
        ] {
            assert_eq!(ok(Some(ct), &body), json!({"a": "1"}), "{ct}");
        }
        for ct in [
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"\"",
            "multipart/form-data; boundary=\"abc",
            "multipart/form-data; boundary=a\u{7f}c",
            "multipart/form-data; boundary=\"abc \"",
        ] {
            assert!(
                matches!(parse(Some(ct), &body), Err(FormError::Malformed(_))),
                "{ct}"
            );
        }
        let long = "x".repeat(MAX_BOUNDARY + 1);
        let ct = format!("multipart/form-data; boundary={long}");
        assert!(matches!(
            parse(Some(&ct), &multipart(&long, &[])),
            Err(FormError::Malformed(_))
        ));
        let ok_long = "x".repeat(MAX_BOUNDARY);
        let ct = format!("multipart/form-data; boundary={ok_long}");
        assert_eq!(ok(Some(&ct), &multipart(&ok_long, &[])), json!({}));
    }

    #[test]
    fn multipart_headers_are_case_insensitive_and_names_unquoted() {
        let body = multipart(
            "b",
            &[
                ("content-disposition: FORM-DATA; NAME=\"a\"", "1"),
                ("CONTENT-DISPOSITION:form-data;name=b", "2"),
                (
                    "Content-Disposition: form-data; name=\"say \\\"hi\\\"\"",
                    "3",
                ),
                ("Content-Disposition: form-data; name=\"semi;colon\"", "4"),
                (
                    "Content-Disposition: form-data; name=\"back\\\\slash\"",
                    "5",
                ),
                (
                    "X-Other: whatever\r\nContent-Disposition: form-data; name=\"c\"",
                    "6",
                ),
                ("Content-Disposition: form-data;\r\n name=\"folded\"", "7"),
            ],
        );
        assert_eq!(
            ok(Some("multipart/form-data; boundary=b"), &body),
            json!({"a": "1", "b": "2", "say \"hi\"": "3", "semi;colon": "4", "back\\slash": "5", "c": "6", "folded": "7"})
        );
    }

    #[test]
    fn multipart_framing() {
        let ct = Some("multipart/form-data; boundary=b");
        let cd = "Content-Disposition: form-data; name=\"a\"";
        // Preamble and epilogue are ignored; transport padding after a boundary is allowed.
        let body = format!("preamble\r\nmore\r\n--b  \t\r\n{cd}\r\n\r\n1\r\n--b--\r\nepilogue\r\n");
        assert_eq!(ok(ct, body.as_bytes()), json!({"a": "1"}));
        // Bare LF line breaks.
        let body = format!("--b\n{cd}\n\nline\nbreak\n--b--\n");
        assert_eq!(ok(ct, body.as_bytes()), json!({"a": "line\nbreak"}));
        // No line break after the closing boundary.
        let body = format!("--b\r\n{cd}\r\n\r\n1\r\n--b--");
        assert_eq!(ok(ct, body.as_bytes()), json!({"a": "1"}));
        // An empty form (what browsers send for a form without successful controls).
        assert_eq!(ok(ct, b"--b--\r\n"), json!({}));
        // A value that contains dashes and the boundary text, but not a delimiter.
        let body = format!("--b\r\n{cd}\r\n\r\n--x b --b\r\n--b--\r\n");
        assert_eq!(ok(ct, body.as_bytes()), json!({"a": "--x b --b"}));
    }

    #[test]
    fn multipart_malformed_bodies() {
        let ct = Some("multipart/form-data; boundary=b");
        let cd = "Content-Disposition: form-data; name=\"a\"";
        let mut cases: Vec<(&str, &str, Vec<u8>)> = [
            ("empty body", "multipart boundary not found", String::new()),
            (
                "no boundary at all",
                "multipart boundary not found",
                "a=1".into(),
            ),
            (
                "missing closing boundary",
                "missing closing multipart boundary",
                format!("--b\r\n{cd}\r\n\r\n1\r\n"),
            ),
            (
                "open delimiter at the end",
                "missing closing multipart boundary",
                format!("--b\r\n{cd}\r\n\r\n1\r\n--b\r\n"),
            ),
            (
                "ends right after a delimiter",
                "missing closing multipart boundary",
                format!("--b\r\n{cd}\r\n\r\n1\r\n--b"),
            ),
            (
                "truncated value",
                "missing closing multipart boundary",
                format!("--b\r\n{cd}\r\n\r\n1"),
            ),
            (
                "part without name",
                "multipart part without a name",
                "--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--\r\n".into(),
            ),
            (
                "file part without name",
                "multipart part without a name",
                "--b\r\nContent-Disposition: form-data; filename=\"x\"\r\n\r\n1\r\n--b--\r\n"
                    .into(),
            ),
            (
                "part without Content-Disposition",
                "multipart part without Content-Disposition",
                "--b\r\nContent-Type: text/plain\r\n\r\n1\r\n--b--\r\n".into(),
            ),
            (
                "part with no headers",
                "multipart part without Content-Disposition",
                "--b\r\n\r\n1\r\n--b--\r\n".into(),
            ),
            (
                "not form-data",
                "multipart part is not form-data",
                "--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\n1\r\n--b--\r\n".into(),
            ),
            (
                "header block without blank line",
                "multipart part headers not ended by a blank line",
                format!("--b\r\n{cd}\r\n--b--\r\n"),
            ),
            (
                "header block without blank line 2",
                "multipart part headers not ended by a blank line",
                format!("--b\r\n{cd}\r\n1\r\n--b--\r\n"),
            ),
            (
                "header line without colon",
                "invalid multipart part header",
                format!("--b\r\nbogus\r\n{cd}\r\n\r\n1\r\n--b--\r\n"),
            ),
            (
                "two dispositions",
                "multipart part with two Content-Disposition headers",
                format!("--b\r\n{cd}\r\n{cd}\r\n\r\n1\r\n--b--\r\n"),
            ),
            (
                "unterminated quoted name",
                "unterminated quoted header parameter",
                "--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\n1\r\n--b--\r\n".into(),
            ),
            (
                "garbage after boundary",
                "invalid multipart delimiter line",
                format!("--bx\r\n{cd}\r\n\r\n1\r\n--b--\r\n"),
            ),
            (
                "NUL in value",
                "NUL character in a field value",
                format!("--b\r\n{cd}\r\n\r\nx\0y\r\n--b--\r\n"),
            ),
            (
                "NUL in name",
                "NUL character in a field name",
                "--b\r\nContent-Disposition: form-data; name=\"a\0\"\r\n\r\n1\r\n--b--\r\n".into(),
            ),
        ]
        .into_iter()
        .map(|(what, why, body)| (what, why, body.into_bytes()))
        .collect();
        let mut bad_utf8 = format!("--b\r\n{cd}\r\n\r\n").into_bytes();
        bad_utf8.extend_from_slice(b"\xc3\x28\r\n--b--\r\n");
        cases.push((
            "invalid UTF-8 value",
            "field value is not valid UTF-8",
            bad_utf8,
        ));
        let mut bad_header = b"--b\r\nContent-Disposition: form-data; name=\"\xff\"".to_vec();
        bad_header.extend_from_slice(b"\r\n\r\n1\r\n--b--\r\n");
        cases.push((
            "invalid UTF-8 header",
            "multipart part header is not UTF-8",
            bad_header,
        ));
        for (what, why, body) in cases {
            assert_eq!(parse(ct, &body), Err(FormError::Malformed(why)), "{what}");
        }
    }

    /// xorshift64*: deterministic pseudo-random bytes without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn never_panics() {
        let ct_mp = "multipart/form-data; boundary=b";
        let valid = multipart(
            "b",
            &[
                ("Content-Disposition: form-data; name=\"a\"", "1\r\n2"),
                (
                    "content-disposition: form-data; name=\"say \\\"x\\\"\"; filename=\"f\"",
                    "zz",
                ),
                ("Content-Disposition: form-data; name=b", "é"),
            ],
        );
        let valid_url = b"a=1&b=%C3%A9&c=+%2&d";
        let cts = [
            Some(ct_mp),
            URLENC,
            Some("multipart/form-data; boundary=\"b\\"),
            Some("multipart/form-data; boundary=\"b\"x"),
            Some("multipart/form-data; =b; boundary"),
            Some("multipart/form-data;;;; boundary=\"\\\""),
            Some(";;;"),
            None,
        ];
        // Every truncation of valid bodies.
        for ct in &cts {
            for n in 0..=valid.len() {
                let _ = parse(*ct, &valid[..n]);
                let _ = parse(*ct, &valid[valid.len() - n..]);
            }
            for n in 0..=valid_url.len() {
                let _ = parse(*ct, &valid_url[..n]);
            }
        }
        // Random mutations of a valid body, and random bytes from an alphabet that hits the
        // interesting cases often.
        let alphabet =
            b"-b\r\n\"\\;=:% +&aAC\0\xff\xc3\xa9 \tContent-Disposition: form-data; name=";
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let mut body = valid.clone();
            for _ in 0..=rng.below(4) {
                let i = rng.below(body.len());
                match rng.below(3) {
                    0 => body[i] = alphabet[rng.below(alphabet.len())],
                    1 => {
                        body.remove(i);
                    }
                    _ => body.insert(i, alphabet[rng.below(alphabet.len())]),
                }
            }
            let _ = parse(Some(ct_mp), &body);
            let len = rng.below(64);
            let noise: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.below(2) == 0 {
                        alphabet[rng.below(alphabet.len())]
                    } else {
                        rng.next() as u8
                    }
                })
                .collect();
            let _ = parse(Some(ct_mp), &noise);
            let _ = parse(URLENC, &noise);
            if let Ok(s) = std::str::from_utf8(&noise) {
                let _ = parse(Some(s), valid_url);
                let _ = parse(Some(&format!("multipart/form-data; {s}")), &valid);
                let _ = parse(Some(&format!("multipart/form-data; boundary={s}")), &noise);
            }
        }
    }
}
