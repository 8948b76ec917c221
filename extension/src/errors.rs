//! Turning failures into PostgreSQL errors with specific SQLSTATEs.
//!
//! Every error reachable from a caller's input goes through [`raise`] with a specific code;
//! `XX000` is left for genuine bugs (an SPI misuse inside linktoken itself).

use linktoken_core::input::InputError;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::spi::SpiResult;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Raises an ERROR with the given SQLSTATE and message. Never returns.
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>) -> ! {
    ErrorReport::new(code, message.into(), "linktoken").report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// Raises an ERROR with a hint that tells the caller what to do instead.
pub fn raise_with_hint(code: PgSqlErrorCode, message: impl Into<String>, hint: &str) -> ! {
    ErrorReport::new(code, message.into(), "linktoken")
        .set_hint(hint)
        .report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// Unwraps a result, raising its error as a PostgreSQL ERROR.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, InputError> {
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e @ InputError::Null(_)) => raise(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                e.to_string(),
            ),
            Err(e @ InputError::Invalid(..)) => raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                e.to_string(),
            ),
        }
    }
}

impl<T> OrRaise<T> for SpiResult<T> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| {
            raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("linktoken internal error: {e}"),
            )
        })
    }
}

/// An error raised by the application's own function (an action), copied whole by
/// [`crate::definer::call`] and carried up the Rust stack as a panic payload.
pub struct AppError(pub *mut pgrx::pg_sys::ErrorData);

// SAFETY: a panic payload must be Send; this one never leaves the backend's one thread (it is
// caught by passing_app_errors on the same stack).
unsafe impl Send for AppError {}

mod unguarded {
    use pgrx::pg_sys;
    unsafe extern "C-unwind" {
        pub fn ReThrowError(edata: *mut pg_sys::ErrorData) -> !;
    }
}

/// Runs an SQL entry point's body so that an error raised by the app's function reaches the
/// caller exactly as PostgreSQL raised it: caught here, after the body's Rust stack (SPI
/// connections included) has unwound, and re-thrown with PostgreSQL's own ReThrowError (as
/// pgrx itself raises its errors, from the entry point's frame). Every other error or panic
/// goes on as before.
pub fn passing_app_errors<T>(body: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => match payload.downcast::<AppError>() {
            Ok(app) => {
                let edata = app.0;
                drop(app);
                // SAFETY: `edata` is a complete ErrorData copied by CopyErrorData into the
                // transaction's memory; nothing of the body is left on the stack.
                unsafe { unguarded::ReThrowError(edata) }
            }
            Err(other) => std::panic::resume_unwind(other),
        },
    }
}

/// The named purpose does not exist.
pub fn unknown_purpose(arg: &str, name: &str) -> ! {
    raise_with_hint(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("{arg} \"{name}\" is not defined"),
        "Define it first with linktoken.define_purpose(name, ttl, ...).",
    )
}
