//! A screen for the bytes a client sends on an HTTP/1.1 connection, in front of hyper.
//!
//! [`HeadScreen`] is fed every byte of the connection in order, in pieces of any size. It
//! refuses in a request head only what hyper (with httparse) accepts although a front proxy
//! may read the framing differently, which is how requests get smuggled (the gateway's tests
//! in `screen/hyper_alone.rs` show what hyper does alone with each):
//!
//! * a line ending in a bare LF: httparse takes it as a line end;
//! * both Content-Length and Transfer-Encoding, in either order: hyper reads the body as
//!   chunked and drops the length from the head it hands on;
//! * two Content-Length fields, even with equal values: hyper takes equal ones as one.
//!
//! Everything else wrong with a head (a bare CR, NUL, obs-fold, a bad field name, a coding
//! other than `chunked` last) is left to hyper, which refuses it and reads nothing after it.
//!
//! To find each head of a kept-alive connection the screen follows the body before it: a
//! Content-Length body by count, a body with any Transfer-Encoding as chunked (hyper refuses
//! a head whose last coding is not `chunked`, the gateway one with codings before it, and
//! neither reads on), through chunk-size lines, chunk data and trailers. Where it cannot
//! follow, it stops: a head over the limit it holds, a Content-Length that is not digits in 64
//! bits, a chunked body it cannot read. hyper refuses each of these as well.
//!
//! [`HeadScreen::safe_end`] says how many bytes of the stream may be handed on: everything
//! before the head being read (so the server never sees a head the screen has not accepted as
//! a whole), and body bytes as they come. Pure logic: no I/O, no allocation.

/// Why a connection's bytes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A head line ended in LF without CR.
    BareLf,
    /// Both Content-Length and Transfer-Encoding.
    LengthAndChunked,
    /// Two Content-Length fields.
    TwoLengths,
    /// A Content-Length that is not digits (with optional spaces or tabs around) in 64 bits.
    BadLength,
    /// More head bytes than the limit without the empty line that ends the head.
    HeadTooLarge,
    /// A chunked body the screen cannot follow (chunk-size line, CRLF after data, trailers).
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
            Rejection::LengthAndChunked => "length_and_chunked",
            Rejection::TwoLengths => "two_lengths",
            Rejection::BadLength => "bad_length",
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
    RequestLine,
    /// At the start of a field line or of the empty line that ends the head.
    FieldStart,
    /// A CR at the start of a line: LF ends the head.
    HeadEnd,
    FieldName,
    FieldValue,
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

/// A Content-Length value read so far: leading blanks, digits, trailing blanks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Length {
    Lead,
    Digits(u64),
    Trail(u64),
    Bad,
}

const CONTENT_LENGTH: &[u8] = b"content-length";
const TRANSFER_ENCODING: &[u8] = b"transfer-encoding";

/// The screen for one connection. See the module documentation.
#[derive(Clone, Debug)]
pub struct HeadScreen {
    max_head: u64,
    state: State,
    /// Bytes scanned so far.
    pos: u64,
    /// Where the head being read starts.
    head_start: u64,
    /// The previous byte was a CR.
    cr: bool,
    content_length: Option<u64>,
    chunked: bool,
    field: Field,
    /// The field name so far: its length, and whether it still matches either framing field.
    name_len: usize,
    maybe_length: bool,
    maybe_coding: bool,
    length: Length,
    chunk_size: u64,
    chunk_digits: bool,
}

impl HeadScreen {
    /// A screen allowing heads (request line, fields and the empty line, plus any empty lines
    /// before the request line) of at most `max_head` bytes.
    pub fn new(max_head: usize) -> HeadScreen {
        HeadScreen {
            max_head: max_head as u64,
            state: State::HeadStart,
            pos: 0,
            head_start: 0,
            cr: false,
            content_length: None,
            chunked: false,
            field: Field::Other,
            name_len: 0,
            maybe_length: false,
            maybe_coding: false,
            length: Length::Lead,
            chunk_size: 0,
            chunk_digits: false,
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
                // Request lines and other fields' values: only CR and LF matter, and the head
                // limit. The hot path for heads.
                State::RequestLine | State::FieldValue
                    if self.field == Field::Other && self.pos - self.head_start < self.max_head =>
                {
                    let room = (self.max_head - (self.pos - self.head_start)) as usize;
                    let window = &bytes[i..bytes.len().min(i + room)];
                    match window.iter().position(|&b| b == b'\r' || b == b'\n') {
                        Some(0) => {
                            self.step_or_reject(bytes[i])?;
                            i += 1;
                        }
                        found => {
                            let n = found.unwrap_or(window.len());
                            i += n;
                            self.pos += n as u64;
                            self.cr = false;
                        }
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
        match self.step(b) {
            Ok(next) => {
                self.state = next;
                self.pos += 1;
                Ok(())
            }
            Err(r) => {
                self.state = State::Rejected(r);
                Err(r)
            }
        }
    }

    /// A new head starts at stream offset `at`.
    fn next_head(&mut self, at: u64) -> State {
        self.head_start = at;
        State::HeadStart
    }

    /// One byte outside body data, at `self.pos`: the next state.
    fn step(&mut self, b: u8) -> Result<State, Rejection> {
        use Rejection::BadChunkedBody as Bad;
        if self.in_head() && self.pos - self.head_start >= self.max_head {
            return Err(Rejection::HeadTooLarge);
        }
        Ok(match self.state {
            State::HeadStart => match b {
                b'\r' | b'\n' => {
                    self.line_end(b)?;
                    State::HeadStart
                }
                _ => {
                    self.cr = false;
                    State::RequestLine
                }
            },
            State::RequestLine => match self.line_end(b)? {
                true => State::FieldStart,
                false => State::RequestLine,
            },
            State::FieldStart if b == b'\r' => {
                self.cr = true;
                State::HeadEnd
            }
            State::HeadEnd if b == b'\n' => self.body_state(self.pos + 1),
            // A field line starting with CR, or any other: hyper judges the name.
            State::FieldStart | State::HeadEnd => {
                self.name_len = 0;
                self.maybe_length = true;
                self.maybe_coding = true;
                self.field_name(b)?
            }
            State::FieldName => self.field_name(b)?,
            State::FieldValue => {
                if self.line_end(b)? {
                    self.end_field()?;
                    State::FieldStart
                } else {
                    if self.field == Field::ContentLength {
                        self.length_byte(b);
                    }
                    State::FieldValue
                }
            }
            State::ChunkSize => match (b, (b as char).to_digit(16)) {
                (_, Some(v)) => {
                    self.chunk_digits = true;
                    self.chunk_size = self
                        .chunk_size
                        .checked_mul(16)
                        .ok_or(Bad)?
                        .checked_add(u64::from(v))
                        .ok_or(Bad)?;
                    State::ChunkSize
                }
                (b';', _) if self.chunk_digits => State::ChunkExtension,
                (b'\r', _) if self.chunk_digits => State::ChunkSizeLf,
                _ => return Err(Bad),
            },
            State::ChunkExtension => match b {
                b'\r' => State::ChunkSizeLf,
                b'\n' => return Err(Bad),
                _ => State::ChunkExtension,
            },
            State::ChunkSizeLf if b == b'\n' && self.chunk_size == 0 => State::TrailerStart,
            State::ChunkSizeLf if b == b'\n' => State::ChunkData(self.chunk_size),
            State::ChunkDataCr if b == b'\r' => State::ChunkDataLf,
            State::ChunkDataLf if b == b'\n' => {
                self.chunk_size = 0;
                self.chunk_digits = false;
                State::ChunkSize
            }
            State::TrailerStart if b == b'\r' => State::TrailerEndLf,
            State::TrailerStart | State::TrailerLine => match b {
                b'\r' => State::TrailerLineLf,
                b'\n' => return Err(Bad),
                _ => State::TrailerLine,
            },
            State::TrailerLineLf if b == b'\n' => State::TrailerStart,
            State::TrailerEndLf if b == b'\n' => self.next_head(self.pos + 1),
            State::ChunkSizeLf
            | State::ChunkDataCr
            | State::ChunkDataLf
            | State::TrailerLineLf
            | State::TrailerEndLf => return Err(Bad),
            State::Body(_) | State::ChunkData(_) | State::Rejected(_) => {
                unreachable!("handled in scan")
            }
        })
    }

    fn in_head(&self) -> bool {
        matches!(
            self.state,
            State::HeadStart
                | State::RequestLine
                | State::FieldStart
                | State::HeadEnd
                | State::FieldName
                | State::FieldValue
        )
    }

    /// True at the LF of a CRLF; a bare LF is refused. Notes whether `b` is a CR.
    fn line_end(&mut self, b: u8) -> Result<bool, Rejection> {
        let after_cr = std::mem::replace(&mut self.cr, b == b'\r');
        match b {
            b'\n' if after_cr => Ok(true),
            b'\n' => Err(Rejection::BareLf),
            _ => Ok(false),
        }
    }

    /// A byte of a field name, or the colon after it.
    fn field_name(&mut self, b: u8) -> Result<State, Rejection> {
        if b == b':' {
            self.cr = false;
            self.field = match self.name_len {
                14 if self.maybe_length => Field::ContentLength,
                17 if self.maybe_coding => Field::TransferEncoding,
                _ => Field::Other,
            };
            self.length = Length::Lead;
            return Ok(State::FieldValue);
        }
        if self.line_end(b)? {
            // A line without a colon: hyper refuses it.
            return Ok(State::FieldStart);
        }
        let b = b.to_ascii_lowercase();
        self.maybe_length &= CONTENT_LENGTH.get(self.name_len) == Some(&b);
        self.maybe_coding &= TRANSFER_ENCODING.get(self.name_len) == Some(&b);
        self.name_len += 1;
        Ok(State::FieldName)
    }

    /// A byte of a Content-Length value, read as hyper reads it: digits in 64 bits, with
    /// spaces or tabs around them.
    fn length_byte(&mut self, b: u8) {
        let digit = u64::from(b.wrapping_sub(b'0'));
        self.length = match (self.length, b) {
            (Length::Lead, b' ' | b'\t') => Length::Lead,
            (Length::Lead, b'0'..=b'9') => Length::Digits(digit),
            (Length::Digits(n), b'0'..=b'9') => n
                .checked_mul(10)
                .and_then(|n| n.checked_add(digit))
                .map_or(Length::Bad, Length::Digits),
            (Length::Digits(n) | Length::Trail(n), b' ' | b'\t' | b'\r') => Length::Trail(n),
            _ => Length::Bad,
        };
    }

    /// The state after a complete head; its body starts at stream offset `at`.
    fn body_state(&mut self, at: u64) -> State {
        let chunked = std::mem::take(&mut self.chunked);
        let length = self.content_length.take().unwrap_or(0);
        if chunked {
            self.chunk_size = 0;
            self.chunk_digits = false;
            State::ChunkSize
        } else if length > 0 {
            State::Body(length)
        } else {
            self.next_head(at)
        }
    }

    /// At the end of a field line: checks the framing fields.
    fn end_field(&mut self) -> Result<(), Rejection> {
        match std::mem::replace(&mut self.field, Field::Other) {
            Field::Other => {}
            Field::ContentLength if self.chunked => return Err(Rejection::LengthAndChunked),
            Field::ContentLength if self.content_length.is_some() => {
                return Err(Rejection::TwoLengths)
            }
            Field::ContentLength => match self.length {
                Length::Digits(n) | Length::Trail(n) => self.content_length = Some(n),
                _ => return Err(Rejection::BadLength),
            },
            Field::TransferEncoding if self.content_length.is_some() => {
                return Err(Rejection::LengthAndChunked)
            }
            Field::TransferEncoding => self.chunked = true,
        }
        Ok(())
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
        // A CR not followed by LF is hyper's to refuse.
        passes(b"\rGET / HTTP/1.1\r\n\r\n");
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
        // Chunk sizes up to 64 bits, leading zeros of any number.
        let big = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab";
        assert_eq!(screen(big), (Ok(()), big.len() as u64));
        passes(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\nx\r\n0\r\n\r\n");
        // Any Transfer-Encoding is followed as chunked: hyper refuses a head whose last coding
        // is not chunked, the gateway one with codings before it.
        let mut stream =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec();
        stream.extend_from_slice(GET);
        passes(&stream);
        // What hyper refuses in extensions and trailers is left to it.
        passes(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a\0\r\nx\r\n0\r\nX-T: a\0\r\n folded\r\n\r\n");
    }

    #[test]
    fn malformed_chunked_bodies_are_rejected_where_the_fault_is() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            &b"zz\r\nconfirm=yes\r\n0\r\n\r\n"[..],
            b"fffffffffffffffff\r\n",
            b"10000000000000000\r\n",
            b"\r\n",
            b";ext\r\n",
            b" 5\r\n",
            b"5 \r\nhello\r\n",
            b"-5\r\n",
            b"5\nhello\r\n",
            b"5\rhello\r\n",
            b"5;a\nhello\r\n",
            b"5\r\nhelloX\r\n",
            b"5\r\nhello\rX",
            b"5\r\nhello\n0\r\n\r\n",
            b"0\r\nX-T: a\nb\r\n\r\n",
            b"0\r\nX-T: a\rb\r\n\r\n",
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
    fn chunk_extensions_and_trailers_are_left_to_hyper_to_bound() {
        // hyper limits both to 16 KiB; the screen passes them on as they come.
        let mut stream = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
        stream.extend(std::iter::repeat_n(b'a', MAX * 2));
        assert_eq!(screen(&stream), (Ok(()), stream.len() as u64));
    }

    #[test]
    fn bare_lf_is_rejected_and_the_head_held() {
        for bytes in [
            &b"GET /healthz HTTP/1.1\nHost: x\n\n"[..],
            b"GET /healthz HTTP/1.1\r\nHost: x\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\n",
            b"GET /healthz HTTP/1.1\r\nHost\n: x\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\r\n",
        ] {
            // After a good request, so the safe end shows where the faulty head starts.
            let mut stream = GET.to_vec();
            stream.extend_from_slice(bytes);
            let expected = if bytes.ends_with(b"\r\n\r\n\r\n") {
                // An empty line before the next request line; its bare LF comes later.
                stream.extend_from_slice(b"\n");
                (Err(Rejection::BareLf), (GET.len() + bytes.len() - 2) as u64)
            } else {
                (Err(Rejection::BareLf), GET.len() as u64)
            };
            assert_eq!(screen(&stream), expected, "{bytes:?}");
        }
    }

    #[test]
    fn other_faults_in_a_head_are_left_to_hyper() {
        // hyper refuses each of these itself (screen/hyper_alone.rs in the gateway).
        for bytes in [
            &b"GET /healthz HTTP/1.1\rHost: x\r\n\r\n"[..],
            b"GET /healthz HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\rX\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nX-A: a\0b\r\n\r\n",
            b"GET /he\0z HTTP/1.1\r\n\r\n",
            b"\0GET / HTTP/1.1\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nX A: a\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\n: a\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nnocolon\r\n\r\n",
        ] {
            let mut stream = GET.to_vec();
            stream.extend_from_slice(bytes);
            passes(&stream);
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
            ("Content-Length: 5\r6\r\n", Rejection::BadLength),
        ] {
            let head = with(fields);
            assert_eq!(rejected(head.as_bytes()), why, "{fields:?}");
        }
        // Look-alike names are other fields; whitespace around a value is allowed.
        passes(with("Content-Lengthy: x\r\nX-Transfer-Encoding: gzip\r\n").as_bytes());
        passes(format!("{}hello", with("Content-Length: \t5 \t\r\n")).as_bytes());
        passes(format!("{}hello", with("Content-Length: 0005\r\n")).as_bytes());
        passes(
            format!(
                "{}hello",
                with("Content-Length: 00000000000000000000000000005\r\n")
            )
            .as_bytes(),
        );
        assert_eq!(
            whole(with("Content-Length: 18446744073709551615\r\n").as_bytes()).0,
            Ok(())
        );
        // The codings are hyper's and the gateway's to judge; the body is read as chunked.
        for fields in [
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: identity\r\n",
        ] {
            passes(format!("{}0\r\n\r\n", with(fields)).as_bytes());
        }
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
        assert_eq!(Rejection::TwoLengths.status(), 400);
        assert!(Rejection::LengthAndChunked.in_head());
        assert!(!Rejection::BadChunkedBody.in_head());
        assert_eq!(Rejection::BareLf.name(), "bare_lf");
    }
}
