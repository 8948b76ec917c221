//! A screen for the bytes a client sends on an HTTP/1.1 connection, in front of the HTTP server.
//!
//! [`HeadScreen`] is fed every byte of the connection in order, in pieces of any size. It finds
//! each request head (the bytes up to the empty line), follows the framing of the body after it
//! (Content-Length bodies by count; chunked bodies through their chunk-size lines, chunk data
//! and trailers) so that it finds the next head of a kept-alive connection, and rejects what a
//! lenient parser could read differently from a strict one:
//!
//! * in a head: a line ending in a bare LF, a CR not followed by LF, a NUL byte, obs-fold (a
//!   line starting with a space or tab), a field name that is not a token or has no colon,
//!   both Content-Length and Transfer-Encoding (either order), two Content-Length fields (even
//!   with equal values) or one that is not plain digits, a Transfer-Encoding other than a
//!   single `chunked` (or two Transfer-Encoding fields), and a head longer than the limit;
//! * in a chunked body: a chunk-size line that is not hex digits (at most 16), optionally
//!   `;extension`, then CRLF; chunk data not followed by CRLF; trailers with the faults above
//!   or longer than the head limit.
//!
//! [`HeadScreen::safe_end`] says how many bytes of the stream may be handed on: everything
//! before the head being read (so the server never sees a head the screen has not accepted as
//! a whole), and body bytes as they come. Pure logic: no I/O, no allocation.

/// Why a connection's bytes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A head line ended in LF without CR.
    BareLf,
    /// A CR in a head not followed by LF.
    BareCr,
    /// A NUL byte in a head.
    Nul,
    /// A header line starting with a space or tab (obsolete line folding).
    ObsFold,
    /// A field name that is empty, not a token, or without a colon.
    BadFieldName,
    /// Both Content-Length and Transfer-Encoding.
    LengthAndChunked,
    /// Two Content-Length fields.
    TwoLengths,
    /// A Content-Length that is not 1 to 19 digits.
    BadLength,
    /// A Transfer-Encoding other than one `chunked`.
    UnsupportedCoding,
    /// More head bytes than the limit without the empty line that ends the head.
    HeadTooLarge,
    /// A chunked body's framing is broken (chunk-size line, CRLF after data, trailers).
    BadChunkedBody,
}

impl Rejection {
    /// True when the fault is in a request head, so the server has seen none of that
    /// request; false for a fault in a body, whose request the server is already answering.
    pub fn in_head(self) -> bool {
        self != Rejection::BadChunkedBody
    }

    /// The HTTP status for a rejected head: 431 for one too large, else 400.
    pub fn status(self) -> u16 {
        match self {
            Rejection::HeadTooLarge => 431,
            _ => 400,
        }
    }

    /// A fixed name for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Rejection::BareLf => "bare_lf",
            Rejection::BareCr => "bare_cr",
            Rejection::Nul => "nul",
            Rejection::ObsFold => "obs_fold",
            Rejection::BadFieldName => "bad_field_name",
            Rejection::LengthAndChunked => "length_and_chunked",
            Rejection::TwoLengths => "two_lengths",
            Rejection::BadLength => "bad_length",
            Rejection::UnsupportedCoding => "unsupported_coding",
            Rejection::HeadTooLarge => "head_too_large",
            Rejection::BadChunkedBody => "bad_chunked_body",
        }
    }
}

/// Where in the stream the screen is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before a request line (empty lines before it are skipped).
    HeadStart,
    /// CR of an empty line before the request line: LF must follow.
    LeadingLf,
    RequestLine,
    /// CR at the end of a request or field line: LF must follow.
    LineLf,
    /// At the start of a field line or of the empty line that ends the head.
    FieldStart,
    FieldName,
    FieldValue,
    /// CR of the empty line that ends the head: LF must follow.
    HeadEndLf,
    /// Content-Length body: bytes left.
    Body(u64),
    ChunkSize,
    ChunkExtension,
    ChunkSizeLf,
    /// Chunk data: bytes left.
    ChunkData(u64),
    ChunkDataCr,
    ChunkDataLf,
    /// At the start of a trailer line or of the empty line that ends the body.
    TrailerStart,
    TrailerLine,
    TrailerLineLf,
    TrailerEndLf,
    Rejected(Rejection),
}

/// The field whose value is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    ContentLength,
    TransferEncoding,
    Other,
}

const CONTENT_LENGTH: &[u8] = b"content-length";
const TRANSFER_ENCODING: &[u8] = b"transfer-encoding";
/// Room for the longer of the two names the screen looks for.
const NAME_ROOM: usize = 17;
/// Room for a Content-Length (19 digits) or `chunked` value with trailing spaces.
const VALUE_ROOM: usize = 24;
/// Most hex digits of a chunk size (64 bits), leading zeros included.
const MAX_CHUNK_DIGITS: u8 = 16;

/// The screen for one connection. See the module documentation.
#[derive(Clone, Debug)]
pub struct HeadScreen {
    max_head: u64,
    state: State,
    /// Bytes scanned so far.
    pos: u64,
    /// Where the current chunk-size line or the trailer section starts.
    line_start: u64,
    /// Where the head being read starts.
    head_start: u64,
    content_length: Option<u64>,
    chunked: bool,
    field: Field,
    name: [u8; NAME_ROOM],
    name_len: usize,
    value: [u8; VALUE_ROOM],
    value_len: usize,
    value_overflow: bool,
    chunk_size: u64,
    chunk_digits: u8,
}

/// Token characters (RFC 9110 section 5.6.2), the bytes of a field name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn hex_value(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

impl HeadScreen {
    /// A screen allowing heads (request line, fields and the empty line, plus any empty lines
    /// before the request line) and trailer sections of at most `max_head` bytes.
    pub fn new(max_head: usize) -> HeadScreen {
        HeadScreen {
            max_head: max_head as u64,
            state: State::HeadStart,
            pos: 0,
            line_start: 0,
            head_start: 0,
            content_length: None,
            chunked: false,
            field: Field::Other,
            name: [0; NAME_ROOM],
            name_len: 0,
            value: [0; VALUE_ROOM],
            value_len: 0,
            value_overflow: false,
            chunk_size: 0,
            chunk_digits: 0,
        }
    }

    /// The rejection, once there is one.
    pub fn rejection(&self) -> Option<Rejection> {
        match self.state {
            State::Rejected(r) => Some(r),
            _ => None,
        }
    }

    /// How many bytes from the start of the stream may be handed on: all before the head
    /// being read; in a body, everything scanned (up to, not including, a faulty byte). Never
    /// decreases. After a rejection in a head it stays at the start of that head.
    pub fn safe_end(&self) -> u64 {
        match self.state {
            State::Rejected(r) if r.in_head() => self.head_start,
            _ if self.in_head() => self.head_start,
            _ => self.pos,
        }
    }

    /// Scans the next bytes of the stream. Stops at the first fault and returns it; after a
    /// rejection every call returns it again without scanning.
    pub fn scan(&mut self, bytes: &[u8]) -> Result<(), Rejection> {
        let mut i = 0;
        while i < bytes.len() {
            match self.state {
                State::Rejected(r) => return Err(r),
                // Bodies are skipped in bulk: the hot path for large messages.
                State::Body(left) | State::ChunkData(left) => {
                    let n = left.min((bytes.len() - i) as u64);
                    i += n as usize;
                    self.pos += n;
                    let left = left - n;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => self.next_head(self.pos),
                        (State::Body(_), _) => State::Body(left),
                        (_, 0) => State::ChunkDataCr,
                        _ => State::ChunkData(left),
                    };
                }
                // Request lines and other fields' values: only CR, LF and NUL matter, and the
                // head limit. The hot path for heads.
                State::RequestLine | State::FieldValue
                    if self.field == Field::Other && self.pos - self.head_start < self.max_head =>
                {
                    let room = (self.max_head - (self.pos - self.head_start)) as usize;
                    let window = &bytes[i..bytes.len().min(i + room)];
                    let n = window
                        .iter()
                        .position(|&b| b == b'\r' || b == b'\n' || b == 0)
                        .unwrap_or(window.len());
                    if n == 0 {
                        self.step_or_reject(bytes[i])?;
                        i += 1;
                    } else {
                        i += n;
                        self.pos += n as u64;
                    }
                }
                _ => {
                    self.step_or_reject(bytes[i])?;
                    i += 1;
                }
            }
        }
        match self.state {
            State::Rejected(r) => Err(r),
            _ => Ok(()),
        }
    }

    /// One byte through [`Self::step`]; a fault becomes the final state.
    fn step_or_reject(&mut self, b: u8) -> Result<(), Rejection> {
        if let Err(r) = self.step(b) {
            self.state = State::Rejected(r);
            return Err(r);
        }
        self.pos += 1;
        Ok(())
    }

    /// A new head starts at stream offset `at`.
    fn next_head(&mut self, at: u64) -> State {
        self.head_start = at;
        State::HeadStart
    }

    /// One byte outside body data, at `self.pos`.
    fn step(&mut self, b: u8) -> Result<(), Rejection> {
        if self.in_head() && self.pos - self.head_start >= self.max_head {
            return Err(Rejection::HeadTooLarge);
        }
        self.state = match self.state {
            State::HeadStart => match b {
                b'\r' => State::LeadingLf,
                b'\n' => return Err(Rejection::BareLf),
                0 => return Err(Rejection::Nul),
                _ => State::RequestLine,
            },
            State::LeadingLf => match b {
                b'\n' => State::HeadStart,
                _ => return Err(Rejection::BareCr),
            },
            State::RequestLine => head_text(b, State::RequestLine)?,
            State::LineLf => match b {
                b'\n' => {
                    self.end_field()?;
                    State::FieldStart
                }
                _ => return Err(Rejection::BareCr),
            },
            State::FieldStart => match b {
                b'\r' => State::HeadEndLf,
                b'\n' => return Err(Rejection::BareLf),
                0 => return Err(Rejection::Nul),
                b' ' | b'\t' => return Err(Rejection::ObsFold),
                _ if is_tchar(b) => {
                    self.name_len = 0;
                    self.push_name(b);
                    State::FieldName
                }
                _ => return Err(Rejection::BadFieldName),
            },
            State::FieldName => match b {
                b':' => {
                    self.start_value();
                    State::FieldValue
                }
                _ if is_tchar(b) => {
                    self.push_name(b);
                    State::FieldName
                }
                b'\n' => return Err(Rejection::BareLf),
                0 => return Err(Rejection::Nul),
                _ => return Err(Rejection::BadFieldName),
            },
            State::FieldValue => {
                if self.field != Field::Other && b != b'\r' {
                    self.push_value(b);
                }
                head_text(b, State::FieldValue)?
            }
            State::HeadEndLf => match b {
                b'\n' => self.body_state(self.pos + 1),
                _ => return Err(Rejection::BareCr),
            },
            State::ChunkSize => match b {
                b';' if self.chunk_digits > 0 => State::ChunkExtension,
                b'\r' if self.chunk_digits > 0 => State::ChunkSizeLf,
                _ => {
                    let v = hex_value(b).ok_or(Rejection::BadChunkedBody)?;
                    self.chunk_digits += 1;
                    if self.chunk_digits > MAX_CHUNK_DIGITS {
                        return Err(Rejection::BadChunkedBody);
                    }
                    self.chunk_size = self.chunk_size << 4 | v;
                    State::ChunkSize
                }
            },
            State::ChunkExtension => match b {
                _ if self.pos - self.line_start >= self.max_head => {
                    return Err(Rejection::BadChunkedBody)
                }
                b'\r' => State::ChunkSizeLf,
                b'\n' | 0 => return Err(Rejection::BadChunkedBody),
                _ => State::ChunkExtension,
            },
            State::ChunkSizeLf => match b {
                b'\n' if self.chunk_size == 0 => {
                    self.line_start = self.pos + 1;
                    State::TrailerStart
                }
                b'\n' => State::ChunkData(self.chunk_size),
                _ => return Err(Rejection::BadChunkedBody),
            },
            State::ChunkDataCr => match b {
                b'\r' => State::ChunkDataLf,
                _ => return Err(Rejection::BadChunkedBody),
            },
            State::ChunkDataLf => match b {
                b'\n' => self.start_chunk(self.pos + 1),
                _ => return Err(Rejection::BadChunkedBody),
            },
            State::TrailerStart | State::TrailerLine => {
                if self.pos - self.line_start >= self.max_head {
                    return Err(Rejection::BadChunkedBody);
                }
                match (self.state, b) {
                    (State::TrailerStart, b'\r') => State::TrailerEndLf,
                    (State::TrailerStart, b' ' | b'\t') => return Err(Rejection::BadChunkedBody),
                    (_, b'\r') => State::TrailerLineLf,
                    (_, b'\n' | 0) => return Err(Rejection::BadChunkedBody),
                    _ => State::TrailerLine,
                }
            }
            State::TrailerLineLf => match b {
                b'\n' => State::TrailerStart,
                _ => return Err(Rejection::BadChunkedBody),
            },
            State::TrailerEndLf => match b {
                b'\n' => self.next_head(self.pos + 1),
                _ => return Err(Rejection::BadChunkedBody),
            },
            State::Body(_) | State::ChunkData(_) | State::Rejected(_) => {
                unreachable!("handled in scan")
            }
        };
        Ok(())
    }

    fn in_head(&self) -> bool {
        matches!(
            self.state,
            State::HeadStart
                | State::LeadingLf
                | State::RequestLine
                | State::LineLf
                | State::FieldStart
                | State::FieldName
                | State::FieldValue
                | State::HeadEndLf
        )
    }

    /// The state after a complete head; its body starts at stream offset `at`.
    fn body_state(&mut self, at: u64) -> State {
        let chunked = std::mem::take(&mut self.chunked);
        let length = self.content_length.take().unwrap_or(0);
        if chunked {
            self.start_chunk(at)
        } else if length > 0 {
            State::Body(length)
        } else {
            self.next_head(at)
        }
    }

    /// A chunk-size line starts at stream offset `at`.
    fn start_chunk(&mut self, at: u64) -> State {
        self.chunk_size = 0;
        self.chunk_digits = 0;
        self.line_start = at;
        State::ChunkSize
    }

    fn push_name(&mut self, b: u8) {
        if self.name_len < NAME_ROOM {
            self.name[self.name_len] = b.to_ascii_lowercase();
        }
        self.name_len += 1;
    }

    fn start_value(&mut self) {
        let name = &self.name[..self.name_len.min(NAME_ROOM)];
        self.field = if self.name_len == CONTENT_LENGTH.len() && name == CONTENT_LENGTH {
            Field::ContentLength
        } else if self.name_len == TRANSFER_ENCODING.len() && name == TRANSFER_ENCODING {
            Field::TransferEncoding
        } else {
            Field::Other
        };
        self.value_len = 0;
        self.value_overflow = false;
    }

    fn push_value(&mut self, b: u8) {
        if self.value_len == 0 && (b == b' ' || b == b'\t') {
            return; // leading whitespace
        }
        if self.value_len < VALUE_ROOM {
            self.value[self.value_len] = b;
            self.value_len += 1;
        } else {
            self.value_overflow = true;
        }
    }

    /// At the end of a field line: checks the framing fields.
    fn end_field(&mut self) -> Result<(), Rejection> {
        let field = std::mem::replace(&mut self.field, Field::Other);
        let mut value = &self.value[..self.value_len];
        while let [rest @ .., b' ' | b'\t'] = value {
            value = rest;
        }
        match field {
            Field::Other => Ok(()),
            Field::ContentLength => {
                if self.chunked {
                    return Err(Rejection::LengthAndChunked);
                }
                if self.content_length.is_some() {
                    return Err(Rejection::TwoLengths);
                }
                if self.value_overflow
                    || value.is_empty()
                    || value.len() > 19
                    || !value.iter().all(u8::is_ascii_digit)
                {
                    return Err(Rejection::BadLength);
                }
                let n = value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                self.content_length = Some(n);
                Ok(())
            }
            Field::TransferEncoding => {
                if self.content_length.is_some() {
                    return Err(Rejection::LengthAndChunked);
                }
                if self.chunked || self.value_overflow || !value.eq_ignore_ascii_case(b"chunked") {
                    return Err(Rejection::UnsupportedCoding);
                }
                self.chunked = true;
                Ok(())
            }
        }
    }
}

/// A byte of a request line or field value: anything but NUL, and a line ends in CRLF.
fn head_text(b: u8, same: State) -> Result<State, Rejection> {
    match b {
        b'\r' => Ok(State::LineLf),
        b'\n' => Err(Rejection::BareLf),
        0 => Err(Rejection::Nul),
        _ => Ok(same),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    /// Scans `bytes` in one piece: the result and the safe end.
    fn whole(bytes: &[u8]) -> (Result<(), Rejection>, u64) {
        let mut s = HeadScreen::new(MAX);
        let r = s.scan(bytes);
        (r, s.safe_end())
    }

    /// Scans `bytes` one byte at a time and checks that this gives what one piece gives, and
    /// that the safe end never goes back.
    fn screen(bytes: &[u8]) -> (Result<(), Rejection>, u64) {
        let expected = whole(bytes);
        let mut s = HeadScreen::new(MAX);
        let mut last = 0;
        let mut result = Ok(());
        for b in bytes {
            result = s.scan(std::slice::from_ref(b));
            assert!(s.safe_end() >= last, "safe end went back");
            last = s.safe_end();
            if result.is_err() {
                break;
            }
        }
        assert_eq!((result, s.safe_end()), expected, "byte by byte");
        expected
    }

    fn rejected(bytes: &[u8]) -> Rejection {
        screen(bytes).0.expect_err("rejected")
    }

    fn passes(bytes: &[u8]) {
        assert_eq!(screen(bytes), (Ok(()), bytes.len() as u64), "{bytes:?}");
    }

    const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn complete_heads_pass_and_unfinished_ones_are_held() {
        passes(GET);
        passes(b"GET / HTTP/1.1\r\n\r\n");
        for cut in 0..GET.len() {
            assert_eq!(screen(&GET[..cut]), (Ok(()), 0), "cut at {cut}");
        }
        // Two requests: the first is released, the unfinished second one held.
        let mut two = GET.to_vec();
        two.extend_from_slice(b"GET / HTTP/1.1\r\nHo");
        assert_eq!(screen(&two), (Ok(()), GET.len() as u64));
    }

    #[test]
    fn empty_lines_before_the_request_line_are_allowed() {
        passes(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(rejected(b"\nGET / HTTP/1.1\r\n\r\n"), Rejection::BareLf);
        assert_eq!(rejected(b"\rGET / HTTP/1.1\r\n\r\n"), Rejection::BareCr);
    }

    #[test]
    fn content_length_bodies_are_skipped_by_count() {
        // The body holds what looks like a broken head: it is data, not a head.
        let req = b"POST /t/x HTTP/1.1\r\nContent-Length: 12\r\n\r\nGET /x\n\0\r\r\n\n";
        let mut stream = req.to_vec();
        stream.extend_from_slice(GET);
        passes(&stream);
        // Body bytes are released as they come, the next head only when complete.
        let (r, end) = screen(&stream[..req.len() - 3]);
        assert_eq!((r, end), (Ok(()), (req.len() - 3) as u64));
        let (r, end) = screen(&stream[..req.len() + 5]);
        assert_eq!((r, end), (Ok(()), req.len() as u64));
        // Content-Length: 0 and no length at all: no body.
        let mut stream = b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_vec();
        stream.extend_from_slice(GET);
        passes(&stream);
    }

    #[test]
    fn chunked_bodies_are_followed_to_their_end() {
        let req: &[u8] = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nhello\r\nA;name=\"v\"\r\n0123456789\r\n00\r\nX-Trailer: t\r\n\r\n";
        let mut stream = req.to_vec();
        stream.extend_from_slice(GET);
        passes(&stream);
        // The chunk data may hold anything, CRLFs and NULs included.
        passes(b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked \r\n\r\n3\r\n\r\n\0\r\n0\r\n\r\n");
        // Chunk sizes up to 16 hex digits.
        let big = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab";
        assert_eq!(screen(big), (Ok(()), big.len() as u64));
    }

    #[test]
    fn malformed_chunked_bodies_are_rejected_where_the_fault_is() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            &b"zz\r\nconfirm=yes\r\n0\r\n\r\n"[..],
            b"fffffffffffffffff\r\n",
            b"00000000000000001\r\nx\r\n0\r\n\r\n",
            b"\r\n",
            b";ext\r\n",
            b" 5\r\n",
            b"5 \r\nhello\r\n",
            b"-5\r\n",
            b"5\nhello\r\n",
            b"5\rhello\r\n",
            b"5;a\nhello\r\n",
            b"5;a\0\r\nhello\r\n",
            b"5\r\nhelloX\r\n",
            b"5\r\nhello\rX",
            b"5\r\nhello\n0\r\n\r\n",
            b"0\r\nX-T: a\nb\r\n\r\n",
            b"0\r\nX-T: a\0\r\n\r\n",
            b"0\r\n folded\r\n\r\n",
            b"0\r\n\rX",
            b"0\r\n\n",
        ] {
            let mut stream = head.to_vec();
            stream.extend_from_slice(body);
            let (r, end) = screen(&stream);
            assert_eq!(r, Err(Rejection::BadChunkedBody), "{body:?}");
            assert!(
                end >= head.len() as u64 && end < stream.len() as u64,
                "{body:?}: released up to the fault, not past it"
            );
        }
    }

    #[test]
    fn chunk_extensions_and_trailers_are_bounded() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut ext = head.clone();
        ext.extend_from_slice(b"1;");
        ext.extend(std::iter::repeat_n(b'a', MAX));
        assert_eq!(rejected(&ext), Rejection::BadChunkedBody);
        let mut trailers = head;
        trailers.extend_from_slice(b"0\r\n");
        for _ in 0..=MAX / 8 {
            trailers.extend_from_slice(b"X-T: a\r\n");
        }
        assert_eq!(rejected(&trailers), Rejection::BadChunkedBody);
    }

    #[test]
    fn faulty_line_ends_nul_and_obs_fold_are_rejected_and_the_head_held() {
        for (bytes, why) in [
            (
                &b"GET /healthz HTTP/1.1\nHost: x\n\n"[..],
                Rejection::BareLf,
            ),
            (b"GET /healthz HTTP/1.1\r\nHost: x\n\r\n", Rejection::BareLf),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\n", Rejection::BareLf),
            (
                b"GET /healthz HTTP/1.1\r\nHost\n: x\r\n\r\n",
                Rejection::BareLf,
            ),
            (b"GET /healthz HTTP/1.1\rHost: x\r\n\r\n", Rejection::BareCr),
            (
                b"GET /healthz HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
                Rejection::BareCr,
            ),
            (
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n\rX",
                Rejection::BareCr,
            ),
            (
                b"GET /healthz HTTP/1.1\r\nX-A: a\0b\r\n\r\n",
                Rejection::Nul,
            ),
            (b"GET /he\0z HTTP/1.1\r\n\r\n", Rejection::Nul),
            (b"GET /healthz HTTP/1.1\r\nX-\0: a\r\n\r\n", Rejection::Nul),
            (b"GET /healthz HTTP/1.1\r\n\0X: a\r\n\r\n", Rejection::Nul),
            (b"\0GET / HTTP/1.1\r\n\r\n", Rejection::Nul),
            (
                b"GET /healthz HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
                Rejection::ObsFold,
            ),
            (
                b"GET /healthz HTTP/1.1\r\n\tX-A: a\r\n\r\n",
                Rejection::ObsFold,
            ),
            (
                b"GET /healthz HTTP/1.1\r\nX A: a\r\n\r\n",
                Rejection::BadFieldName,
            ),
            (
                b"GET /healthz HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
                Rejection::BadFieldName,
            ),
            (
                b"GET /healthz HTTP/1.1\r\n: a\r\n\r\n",
                Rejection::BadFieldName,
            ),
            (
                b"GET /healthz HTTP/1.1\r\nnocolon\r\n\r\n",
                Rejection::BadFieldName,
            ),
            (
                b"GET /healthz HTTP/1.1\r\nX(: a\r\n\r\n",
                Rejection::BadFieldName,
            ),
        ] {
            // After a good request, so the safe end shows where the faulty head starts.
            let mut stream = GET.to_vec();
            stream.extend_from_slice(bytes);
            assert_eq!(screen(&stream), (Err(why), GET.len() as u64), "{bytes:?}");
        }
    }

    #[test]
    fn framing_fields_must_be_unambiguous() {
        let with = |fields: &str| format!("POST / HTTP/1.1\r\nHost: x\r\n{fields}\r\n");
        for (fields, why) in [
            (
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                Rejection::LengthAndChunked,
            ),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                Rejection::LengthAndChunked,
            ),
            (
                "content-length: 0\r\ntransfer-encoding: gzip\r\n",
                Rejection::LengthAndChunked,
            ),
            (
                "Content-Length: 5\r\nContent-Length: 6\r\n",
                Rejection::TwoLengths,
            ),
            (
                "Content-Length: 5\r\nContent-Length: 5\r\n",
                Rejection::TwoLengths,
            ),
            (
                "CONTENT-LENGTH: 5\r\ncontent-length: 5\r\n",
                Rejection::TwoLengths,
            ),
            ("Content-Length: -1\r\n", Rejection::BadLength),
            ("Content-Length: +5\r\n", Rejection::BadLength),
            ("Content-Length: 5, 5\r\n", Rejection::BadLength),
            ("Content-Length: 1 2\r\n", Rejection::BadLength),
            ("Content-Length: 0x10\r\n", Rejection::BadLength),
            ("Content-Length:\r\n", Rejection::BadLength),
            ("Content-Length: 5\x0c\r\n", Rejection::BadLength),
            (
                "Content-Length: 18446744073709551616\r\n",
                Rejection::BadLength,
            ),
            (
                "Content-Length: 00000000000000000000000000005\r\n",
                Rejection::BadLength,
            ),
            (
                "Transfer-Encoding: gzip, chunked\r\n",
                Rejection::UnsupportedCoding,
            ),
            (
                "Transfer-Encoding: chunked, chunked\r\n",
                Rejection::UnsupportedCoding,
            ),
            (
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                Rejection::UnsupportedCoding,
            ),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                Rejection::UnsupportedCoding,
            ),
            (
                "Transfer-Encoding: identity\r\n",
                Rejection::UnsupportedCoding,
            ),
            ("Transfer-Encoding:\r\n", Rejection::UnsupportedCoding),
            (
                "Transfer-Encoding: xchunked\r\n",
                Rejection::UnsupportedCoding,
            ),
        ] {
            let head = with(fields);
            assert_eq!(rejected(head.as_bytes()), why, "{fields:?}");
        }
        // Look-alike names are other fields; whitespace around a value is allowed.
        passes(with("Content-Lengthy: x\r\nX-Transfer-Encoding: gzip\r\n").as_bytes());
        passes(format!("{}hello", with("Content-Length: \t5 \t\r\n")).as_bytes());
        passes(format!("{}hello", with("Content-Length: 0005\r\n")).as_bytes());
        assert_eq!(
            whole(with("Content-Length: 9999999999999999999\r\n").as_bytes()).0,
            Ok(())
        );
    }

    #[test]
    fn heads_over_the_limit_are_rejected() {
        let at_limit = |n: usize| {
            let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
            head.extend(std::iter::repeat_n(b'a', n - head.len() - 4));
            head.extend_from_slice(b"\r\n\r\n");
            assert_eq!(head.len(), n);
            head
        };
        passes(&at_limit(MAX));
        assert_eq!(rejected(&at_limit(MAX + 1)), Rejection::HeadTooLarge);
        // Without an end, the first byte past the limit is refused.
        let endless = vec![b'a'; MAX * 2];
        let mut s = HeadScreen::new(MAX);
        assert_eq!(s.scan(&endless[..MAX]), Ok(()));
        assert_eq!(s.scan(&endless[MAX..]), Err(Rejection::HeadTooLarge));
        // Empty lines before the request line count too.
        assert_eq!(rejected(&b"\r\n".repeat(MAX)), Rejection::HeadTooLarge);
        // Each head of a connection has its own limit; bodies do not count.
        let mut stream = at_limit(MAX);
        stream.extend_from_slice(&at_limit(MAX));
        passes(&stream);
    }

    #[test]
    fn a_rejection_sticks() {
        let mut s = HeadScreen::new(MAX);
        assert_eq!(s.scan(b"GET / HTTP/1.1\n"), Err(Rejection::BareLf));
        assert_eq!(s.rejection(), Some(Rejection::BareLf));
        assert_eq!(s.scan(GET), Err(Rejection::BareLf));
        assert_eq!(s.safe_end(), 0);
    }

    #[test]
    fn rejections_name_their_status() {
        assert_eq!(Rejection::HeadTooLarge.status(), 431);
        assert_eq!(Rejection::Nul.status(), 400);
        assert!(Rejection::LengthAndChunked.in_head());
        assert!(!Rejection::BadChunkedBody.in_head());
        assert_eq!(Rejection::BareLf.name(), "bare_lf");
    }
}
