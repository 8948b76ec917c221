//! Pure logic of linktoken, free of PostgreSQL and HTTP so plain `cargo test` covers it.
//!
//! * [`token`]: the link token format, generation from the OS CSPRNG, parsing, hashing.
//! * [`status`]: the statuses peek and redeem report.
//! * [`input`]: validation of app-supplied arguments.
//! * [`code`]: typed numeric codes (generation, keyed hashing, constant-time checks).
//! * [`sealed`]: sealed (stateless, encrypted) tokens.
//! * [`mailbox`]: the secret part of an outbox message, sealed to the mailer's public key.
//! * [`mail`]: the mailer's templates, retry schedule, key files and Message-IDs.
//! * [`page`]: a purpose's landing page: the model and the checks of its definition;
//!   [`page_forms`]: the forms derived from it (landing, code, request); [`submission`]: a
//!   submitted form checked against its page, RFC 8058 one-click.
//! * [`form`]: parsing of submitted form bodies (urlencoded and multipart) into JSON.
//! * [`head_screen`]: the screen of HTTP/1.1 request framing the gateway puts in front of its
//!   HTTP server, for what hyper alone accepts (bare LF line ends, Content-Length with
//!   Transfer-Encoding, two equal Content-Lengths) and to follow bodies to the next head.
//! * [`conninfo`]: `sslmode` and `sslrootcert` in a libpq connection string (both forms),
//!   taken out for the gateway's TLS and turned into what to verify.

pub mod code;
pub mod conninfo;
pub mod form;
pub mod head_screen;
pub mod input;
pub mod mail;
pub mod mailbox;
pub mod page;
pub mod page_forms;
pub mod sealed;
pub mod status;
pub mod submission;
pub mod token;

pub use status::Status;

/// Does this look like a token (stored `ltk_` with a valid checksum, or sealed `lts_` with a
/// plausible shape)? Cheap, no key and no lookup: what the gateway checks before any database
/// round trip.
pub fn is_well_formed(text: &str) -> bool {
    token::validate(text).is_ok() || sealed::key_id(text).is_ok()
}
