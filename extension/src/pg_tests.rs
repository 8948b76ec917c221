//! `#[pg_test]`s: the Rust functions called directly inside a PostgreSQL backend. Each test runs
//! in its own transaction, which is rolled back afterwards.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use crate::{purge, purpose, tokens};
    use pgrx::prelude::*;

    fn define(name: &str, ttl: &str, max_uses: Option<i32>) {
        Spi::run_with_args(
            "SELECT linktoken.define_purpose($1, $2::interval, $3)",
            &[name.into(), ttl.into(), max_uses.into()],
        )
        .unwrap();
    }

    /// The status column of `linktoken.<function>(token, purpose)`, called through SQL as an
    /// application would (the Rust functions return composite datums).
    fn status_of(function: &str, token: Option<&str>, purpose: &str) -> String {
        Spi::get_one_with_args(
            &format!("SELECT status FROM linktoken.{function}($1, $2)"),
            &[token.into(), purpose.into()],
        )
        .unwrap()
        .unwrap()
    }

    fn status_of_peek(token: &str, purpose: &str) -> String {
        status_of("peek", Some(token), purpose)
    }

    fn status_of_redeem(token: &str, purpose: &str) -> String {
        status_of("redeem", Some(token), purpose)
    }

    #[pg_test]
    fn issue_peek_redeem_redeem() {
        define("t_verify", "1 day", Some(1));
        let token = tokens::issue(Some("t_verify"), Some("anna@example.org"), None, None, None);
        assert!(token.starts_with("ltk_") && token.len() == 52);
        // (no row, and so an error, when expires_at is missing)
        let (status, subject, uses_left): (Option<String>, Option<String>, Option<i32>) =
            Spi::get_three_with_args(
                "SELECT status, subject, uses_left FROM linktoken.peek($1, 't_verify') \
                 WHERE expires_at IS NOT NULL",
                &[token.as_str().into()],
            )
            .unwrap();
        assert_eq!(status.as_deref(), Some("ok"));
        assert_eq!(subject.as_deref(), Some("anna@example.org"));
        assert_eq!(uses_left, Some(1));
        assert_eq!(status_of_redeem(&token, "t_verify"), "ok");
        assert_eq!(status_of_redeem(&token, "t_verify"), "used");
        assert_eq!(status_of_peek(&token, "t_verify"), "used");
    }

    #[pg_test]
    fn only_the_hash_is_stored() {
        define("t_hash", "1 hour", Some(1));
        let token = tokens::issue(Some("t_hash"), Some("s"), None, None, None);
        let stored: Vec<u8> =
            Spi::get_one("SELECT token_hash FROM linktoken.tokens WHERE purpose = 't_hash'")
                .unwrap()
                .unwrap();
        assert_eq!(stored, linktoken_core::token::hash(&token).to_vec());
        let leaked: i64 = Spi::get_one_with_args(
            "SELECT count(*) FROM linktoken.tokens t WHERE strpos(t::text, $1) > 0",
            &[token[4..].into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(leaked, 0);
    }

    #[pg_test]
    fn payload_numbers_keep_full_precision() {
        define("t_payload", "1 hour", Some(1));
        // jsonb is passed through as a datum: a serde round trip would round this number
        let token: String = Spi::get_one(
            "SELECT linktoken.issue('t_payload', 's', '{\"n\": 123456789012345678901234567890.5}')",
        )
        .unwrap()
        .unwrap();
        let text: String = Spi::get_one_with_args(
            "SELECT payload::text FROM linktoken.peek($1, 't_payload')",
            &[token.as_str().into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(text, r#"{"n": 123456789012345678901234567890.5}"#);
    }

    #[pg_test]
    fn malformed_tokens_are_invalid_not_errors() {
        define("t_bad", "1 hour", Some(1));
        let long = "a".repeat(1 << 20);
        for bad in ["", "ltk_", "ltk_%%%", long.as_str(), "ltk_éééé", "\u{1}"] {
            assert_eq!(status_of_peek(bad, "t_bad"), "invalid");
            assert_eq!(status_of_redeem(bad, "t_bad"), "invalid");
        }
        assert_eq!(status_of("peek", None, "t_bad"), "invalid");
    }

    #[pg_test]
    fn other_purpose_is_invalid() {
        define("t_a", "1 hour", Some(1));
        define("t_b", "1 hour", Some(1));
        let token = tokens::issue(Some("t_a"), Some("s"), None, None, None);
        assert_eq!(status_of_redeem(&token, "t_b"), "invalid");
        assert_eq!(status_of_peek(&token, "t_a"), "ok");
    }

    #[pg_test]
    fn reissue_revokes_and_revoke_subject_counts() {
        define("t_reset", "1 hour", Some(1));
        let first = tokens::issue(Some("t_reset"), Some("u"), None, None, None);
        let second = tokens::issue(Some("t_reset"), Some("u"), None, None, None);
        assert_eq!(status_of_peek(&first, "t_reset"), "revoked");
        assert_eq!(status_of_peek(&second, "t_reset"), "ok");
        assert_eq!(tokens::revoke_subject(Some("u"), None), 1);
        assert_eq!(status_of_peek(&second, "t_reset"), "revoked");
        assert!(!tokens::revoke(Some(&second)));
    }

    #[pg_test]
    fn token_bytes_setting_controls_length() {
        define("t_len", "1 hour", Some(1));
        Spi::run("SET LOCAL linktoken.token_bytes = 16").unwrap();
        let token = tokens::issue(Some("t_len"), Some("s"), None, None, None);
        assert_eq!(token.len(), 31);
        assert_eq!(linktoken_core::token::validate(&token), Ok(16));
    }

    #[pg_test]
    fn purge_keeps_live_tokens() {
        define("t_purge", "1 hour", None);
        let live = tokens::issue(Some("t_purge"), Some("live"), None, None, None);
        let old = tokens::issue(Some("t_purge"), Some("old"), None, None, None);
        Spi::run(
            "UPDATE linktoken.tokens SET expires_at = now() - interval '30 days' WHERE subject = 'old'",
        )
        .unwrap();
        assert_eq!(purge::purge(), 1);
        assert_eq!(status_of_peek(&live, "t_purge"), "ok");
        assert_eq!(status_of_peek(&old, "t_purge"), "invalid");
    }

    #[pg_test]
    fn backtraces_stay_out_of_error_details() {
        assert_eq!(std::env::var("RUST_LIB_BACKTRACE").as_deref(), Ok("0"));
    }

    #[pg_test(error = "subject must not be empty")]
    fn empty_subject_is_an_error() {
        define("t_err", "1 hour", Some(1));
        tokens::issue(Some("t_err"), Some(""), None, None, None);
    }

    #[pg_test(error = "purpose \"t_missing\" is not defined")]
    fn unknown_purpose_is_an_error() {
        tokens::issue(Some("t_missing"), Some("s"), None, None, None);
    }

    #[pg_test(error = "ttl must be a positive interval, not 00:00:00")]
    fn zero_ttl_is_an_error() {
        purpose::define_purpose(
            Some("t_zero"),
            Some(Interval::new(0, 0, 0).unwrap()),
            Some(1),
            Some(true),
            None,
            None,
            None,
            Some(5),
            Some(false),
            None,
        );
    }
}
