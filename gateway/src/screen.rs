//! The request screen in front of hyper: wraps each accepted connection and runs every byte
//! the client sends through [`HeadScreen`] before hyper reads it.
//!
//! hyper only ever sees request heads the screen accepted as a whole: bytes of a head are held
//! back until its empty line has arrived (so at most the head limit is held), body bytes pass
//! as they come. On the hot path nothing is copied: bytes are read straight into hyper's
//! buffer and stay there when they end in a finished head or inside a body.
//!
//! When the screen refuses a head, hyper gets every byte before it and then end of input: it
//! finishes the responses to the earlier requests on the connection (the server is built with
//! `half_close(true)`, so end of input does not cut them off), finds the connection idle and
//! shuts it down; only then, in `poll_shutdown`, is the fixed 400 (431 for an oversized head)
//! with `Connection: close` written, so it never lands inside a response. When the fault is in
//! a chunked body, hyper has the request already: its body ends early, hyper answers it with
//! an error and closes, and nothing else is written.
//!
//! After a refusal the connection lingers before it closes: the write side is shut (the client
//! sees the answer and end of input), then what the client still sends is read and dropped
//! until it closes, for at most [`LINGER`] and [`LINGER_BYTES`]. Closing a socket with unread
//! input makes the kernel send a reset, which can destroy the answer before the client reads it.

use crate::metrics::Metrics;
use linktoken_core::head_screen::{HeadScreen, Rejection};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
    Content-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\n\
    Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n\
    Bad request\n";
const HEAD_TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
    Content-Type: text/plain; charset=utf-8\r\nContent-Length: 22\r\n\
    Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n\
    Request head too large\n";

/// Longest wait and most bytes read and dropped after a refusal (see the module documentation).
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// A held-back buffer grown past this is freed once empty, so an idle connection keeps little.
const KEEP_CAPACITY: usize = 4096;

/// Where rejections are counted and logged.
pub struct Reporter {
    pub metrics: Arc<Metrics>,
    pub peer: IpAddr,
}

impl Reporter {
    fn rejected(&self, why: Rejection) {
        self.metrics.malformed(why.name());
        eprintln!(
            "warn: {} sent a malformed request ({}), connection closed",
            self.peer,
            why.name()
        );
    }
}

/// A connection with the screen in front of its reads.
pub struct Screened<S> {
    io: S,
    screen: HeadScreen,
    /// Bytes received and not yet given to hyper: `held[..ready]` passed the screen, the rest
    /// is the start of an unfinished head.
    held: Vec<u8>,
    ready: usize,
    /// Bytes received from the client so far.
    received: u64,
    /// The client closed its side (or the screen refused something): hyper gets end of input
    /// once `ready` is handed over.
    ended: bool,
    refused: bool,
    /// The answer to write before shutting down, and how much of it is written.
    reply: &'static [u8],
    replied: usize,
    write_shut: bool,
    /// After a refusal: the end of the linger, and the bytes dropped meanwhile.
    linger: Option<Pin<Box<Sleep>>>,
    dropped: usize,
    reporter: Reporter,
}

impl<S> Screened<S> {
    /// Screens `io`, allowing request heads of at most `max_head` bytes.
    pub fn new(io: S, max_head: usize, reporter: Reporter) -> Screened<S> {
        Screened {
            io,
            screen: HeadScreen::new(max_head),
            held: Vec::new(),
            ready: 0,
            received: 0,
            ended: false,
            refused: false,
            reply: b"",
            replied: 0,
            write_shut: false,
            linger: None,
            dropped: 0,
            reporter,
        }
    }

    fn reject(&mut self, why: Rejection) {
        self.ended = true;
        self.refused = true;
        self.held.truncate(self.ready);
        if why.in_head() {
            self.reply = if why.status() == 431 {
                HEAD_TOO_LARGE
            } else {
                BAD_REQUEST
            };
        }
        self.reporter.rejected(why);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Screened<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready > 0 {
                let n = this.ready.min(buf.remaining());
                buf.put_slice(&this.held[..n]);
                this.held.drain(..n);
                this.ready -= n;
                if this.held.is_empty() && this.held.capacity() > KEEP_CAPACITY {
                    this.held = Vec::new();
                }
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            let mark = buf.filled().len();
            ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
            let new = &buf.filled()[mark..];
            if new.is_empty() {
                // The client closed its side; an unfinished head is dropped.
                this.ended = true;
                this.held.clear();
                continue;
            }
            // Bytes before `held` are hyper's already.
            let handed = this.received - this.held.len() as u64;
            this.received += new.len() as u64;
            let result = this.screen.scan(new);
            let safe = (this.screen.safe_end() - handed) as usize;
            if this.held.is_empty() {
                // Usual case: what passed stays in hyper's buffer, an unfinished head waits.
                this.held.extend_from_slice(&new[safe..]);
                buf.set_filled(mark + safe);
            } else {
                this.held.extend_from_slice(new);
                buf.set_filled(mark);
                this.ready = safe;
            }
            if let Err(why) = result {
                this.reject(why);
            }
            if buf.filled().len() > mark {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncRead + Unpin> Screened<S> {
    /// Reads and drops input until the client closes, [`LINGER`] has passed or
    /// [`LINGER_BYTES`] were dropped. Read errors end it too.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self
            .linger
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER)));
        let mut scratch = [0u8; 4096];
        while self.dropped < LINGER_BYTES {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    self.dropped += buf.filled().len();
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return deadline.as_mut().poll(cx),
            }
        }
        Poll::Ready(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Screened<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    /// Writes the answer to a refused head first, if any, and lingers after a refusal.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.replied < this.reply.len() {
            let n = ready!(Pin::new(&mut this.io).poll_write(cx, &this.reply[this.replied..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.replied += n;
        }
        if !this.write_shut {
            ready!(Pin::new(&mut this.io).poll_flush(cx))?;
            ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            this.write_shut = true;
        }
        if this.refused {
            ready!(this.poll_linger(cx));
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod hyper_alone;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::net::Ipv4Addr;
    use std::task::Waker;

    /// A client: each read returns the next chunk; then end of input, or Pending while `open`.
    #[derive(Default)]
    struct Client {
        chunks: VecDeque<Vec<u8>>,
        open: bool,
        written: Vec<u8>,
        shut: bool,
    }

    impl AsyncRead for Client {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            match this.chunks.pop_front() {
                Some(mut chunk) => {
                    let n = chunk.len().min(buf.remaining());
                    buf.put_slice(&chunk[..n]);
                    if n < chunk.len() {
                        this.chunks.push_front(chunk.split_off(n));
                    }
                    Poll::Ready(Ok(()))
                }
                None if this.open => Poll::Pending,
                None => Poll::Ready(Ok(())),
            }
        }
    }

    impl AsyncWrite for Client {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().shut = true;
            Poll::Ready(Ok(()))
        }
    }

    fn screened(chunks: &[&[u8]], open: bool) -> (Screened<Client>, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let client = Client {
            chunks: chunks.iter().map(|c| c.to_vec()).collect(),
            open,
            ..Client::default()
        };
        let reporter = Reporter {
            metrics: metrics.clone(),
            peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        (Screened::new(client, 1024, reporter), metrics)
    }

    /// One read as hyper does it, with `room` bytes of buffer: the bytes, or None for Pending.
    fn read(s: &mut Screened<Client>, room: usize) -> Option<Vec<u8>> {
        let mut space = vec![0u8; room];
        let mut buf = ReadBuf::new(&mut space);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(s).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) => Some(buf.filled().to_vec()),
            Poll::Ready(Err(e)) => panic!("read error {e}"),
            Poll::Pending => None,
        }
    }

    /// Everything hyper would read until end of input (or Pending).
    fn read_all(s: &mut Screened<Client>, room: usize) -> (Vec<u8>, bool) {
        let mut got = Vec::new();
        loop {
            match read(s, room) {
                Some(bytes) if bytes.is_empty() => return (got, true),
                Some(bytes) => got.extend_from_slice(&bytes),
                None => return (got, false),
            }
        }
    }

    fn shutdown(s: &mut Screened<Client>) -> Vec<u8> {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut *s).poll_shutdown(&mut cx) {
            Poll::Ready(Ok(())) => {}
            other => panic!("shutdown: {other:?}"),
        }
        assert!(s.io.shut, "the write side is shut");
        s.io.written.clone()
    }

    const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    const POST: &[u8] = b"POST /t/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";

    #[tokio::test]
    async fn good_requests_pass_untouched_without_copies() {
        let stream = [GET, POST, GET].concat();
        let (mut s, metrics) = screened(&[&stream], false);
        assert_eq!(read_all(&mut s, 8192), (stream, true));
        assert_eq!(s.held.capacity(), 0, "nothing was held back");
        assert_eq!(shutdown(&mut s), b"", "nothing written");
        assert!(!metrics
            .render(&crate::metrics::PoolStatus {
                max_size: 0,
                size: 0,
                available: 0,
                waiting: 0
            })
            .contains("malformed_requests_total{"));
    }

    #[tokio::test]
    async fn an_unfinished_head_is_held_until_it_is_complete() {
        // The first read ends inside the second head; the rest comes byte by byte.
        let stream = [GET, GET].concat();
        let cut = GET.len() + 5;
        let (mut s, _) = screened(&[&stream[..cut]], true);
        assert_eq!(read(&mut s, 8192).unwrap(), GET, "the first head only");
        for b in &stream[cut..stream.len() - 1] {
            // Hyper is never woken with a part of the head.
            assert_eq!(read(&mut s, 8192), None);
            s.io.chunks.push_back(vec![*b]);
        }
        assert_eq!(read(&mut s, 8192), None);
        s.io.chunks.push_back(stream[stream.len() - 1..].to_vec());
        assert_eq!(read(&mut s, 8192).unwrap(), GET);
        assert!(s.held.is_empty());
        // Handed over in small pieces when hyper's buffer is small.
        let (mut s, _) = screened(&[&stream[..3], &stream[3..]], false);
        assert_eq!(read_all(&mut s, 7), (stream.clone(), true));
    }

    #[tokio::test]
    async fn a_refused_head_is_never_handed_over_and_answered_400_on_shutdown() {
        let bad = b"POST /t/x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        for chunks in [
            vec![[GET, bad].concat()],
            vec![GET.to_vec(), bad[..10].to_vec(), bad[10..].to_vec()],
        ] {
            let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let (mut s, metrics) = screened(&chunks, true);
            // The good request, then end of input although the client keeps the connection open.
            assert_eq!(read_all(&mut s, 8192), (GET.to_vec(), true));
            assert_eq!(read(&mut s, 8192).unwrap(), b"", "and it stays ended");
            // Lingers (the client stays open): Pending until the deadline, answer already out.
            let mut cx = Context::from_waker(Waker::noop());
            assert!(Pin::new(&mut s).poll_shutdown(&mut cx).is_pending());
            assert_eq!(s.io.written, BAD_REQUEST);
            assert!(s.io.shut);
            let text = metrics.render(&crate::metrics::PoolStatus {
                max_size: 0,
                size: 0,
                available: 0,
                waiting: 0,
            });
            assert!(text.contains(
                "linktoken_gateway_malformed_requests_total{reason=\"length_and_chunked\"} 1"
            ));
        }
        // A client that closes after the answer ends the linger.
        let (mut s, _) = screened(&[b"GET / HTTP/1.1\nHost: x\n\n"], false);
        assert_eq!(read_all(&mut s, 8192), (Vec::new(), true));
        assert_eq!(shutdown(&mut s), BAD_REQUEST);
        // An oversized head gets 431.
        let big = vec![b'a'; 2048];
        let (mut s, _) = screened(&[&big], false);
        assert_eq!(read_all(&mut s, 8192), (Vec::new(), true));
        assert_eq!(shutdown(&mut s), HEAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_fault_in_a_body_ends_it_early_and_hyper_answers() {
        let head = b"POST /t/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
        let stream = [&head[..], b"zz\r\n0\r\n\r\n", GET].concat();
        let (mut s, _) = screened(&[&stream], false);
        assert_eq!(read_all(&mut s, 8192), (head.to_vec(), true));
        assert_eq!(shutdown(&mut s), b"", "hyper answers that request itself");
    }

    #[tokio::test]
    async fn a_client_closing_mid_head_gives_end_of_input() {
        let (mut s, _) = screened(&[GET, &GET[..10]], false);
        assert_eq!(read_all(&mut s, 8192), (GET.to_vec(), true));
        assert_eq!(shutdown(&mut s), b"");
    }
}
