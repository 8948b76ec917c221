//! Pure logic of linktoken, free of PostgreSQL and HTTP so plain `cargo test` covers it.
//!
//! * [`token`]: the link token format, generation from the OS CSPRNG, parsing, hashing.
//! * [`status`]: the statuses peek and redeem report.
//! * [`input`]: validation of app-supplied arguments.
//! * [`page`]: a purpose's landing page and the checks of a submitted form.

pub mod input;
pub mod page;
pub mod status;
pub mod token;

pub use status::Status;
