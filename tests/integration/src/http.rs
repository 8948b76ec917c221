//! A minimal HTTP/1.1 client over a raw TCP socket, so tests see exactly what the gateway sends
//! (and can send malformed requests). One request per connection (`Connection: close`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends raw bytes and reads the reply until the server closes the connection.
pub fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    parse(&buf).ok_or_else(|| {
        std::io::Error::other(format!(
            "unparsable reply: {:?}",
            String::from_utf8_lossy(&buf)
        ))
    })
}

fn parse(buf: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// A well-formed request. `headers` are extra header lines without CRLF.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Reply {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} (path not shown: it may hold a token): {e}"))
}

/// Like [`request`], but a connection that fails or closes without a reply is an `Err`.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> std::io::Result<Reply> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes)
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], b"")
}

/// POST an urlencoded form.
pub fn post_form(addr: SocketAddr, path: &str, fields: &[(&str, &str)]) -> Reply {
    post_form_with(addr, path, &[], fields)
}

/// Like [`post_form`], but a connection that fails or closes without a reply is an `Err`.
pub fn try_post_form(
    addr: SocketAddr,
    path: &str,
    fields: &[(&str, &str)],
) -> std::io::Result<Reply> {
    try_post_form_with(addr, path, &[], fields)
}

/// [`post_form`] with extra header lines (without CRLF), e.g. `Origin: …`, `Cookie: …`.
pub fn post_form_with(
    addr: SocketAddr,
    path: &str,
    headers: &[&str],
    fields: &[(&str, &str)],
) -> Reply {
    try_post_form_with(addr, path, headers, fields)
        .unwrap_or_else(|e| panic!("POST (path not shown: it may hold a token): {e}"))
}

fn try_post_form_with(
    addr: SocketAddr,
    path: &str,
    headers: &[&str],
    fields: &[(&str, &str)],
) -> std::io::Result<Reply> {
    let mut all = vec!["Content-Type: application/x-www-form-urlencoded"];
    all.extend_from_slice(headers);
    try_request(addr, "POST", path, &all, form_encode(fields).as_bytes())
}

pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
