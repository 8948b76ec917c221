//! The outcome of looking a token up: the `status` column of peek and redeem.

use std::fmt;

/// What a token lookup found. `Ok` is the only status that carries subject and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Usable (peek) or just consumed (redeem).
    Ok,
    /// Malformed, unknown, or issued for another purpose. These cases are deliberately one
    /// status, so a link never tells a stranger which of them applies.
    Invalid,
    /// Past its expiry time.
    Expired,
    /// Every allowed use has been consumed.
    Used,
    /// Revoked by the app, by a newer token for the same subject and purpose, or by revoke_subject.
    Revoked,
    /// A typed code that does not match (redeem_code).
    WrongCode,
    /// Too many wrong codes for this subject and purpose: codes and links are locked until the
    /// window ends.
    Locked,
    /// A link bound to the browser that asked for it, opened without that browser's value
    /// (another device, or a scanner): nothing is consumed; the code still works.
    Unbound,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Ok,
        Status::Invalid,
        Status::Expired,
        Status::Used,
        Status::Revoked,
        Status::WrongCode,
        Status::Locked,
        Status::Unbound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Invalid => "invalid",
            Status::Expired => "expired",
            Status::Used => "used",
            Status::Revoked => "revoked",
            Status::WrongCode => "wrong_code",
            Status::Locked => "locked",
            Status::Unbound => "unbound",
        }
    }

    /// The status of a token row that could not be consumed, from its stored state. The order
    /// is what is most useful to the person holding the link: a revoked token says so even
    /// when it has also expired since, and a used one says "already done". (Links are never
    /// `locked`: wrong typed codes lock only the codes, see redeem_code.)
    pub fn of_unusable(revoked: bool, used_up: bool, expired: bool) -> Status {
        if revoked {
            Status::Revoked
        } else if used_up {
            Status::Used
        } else if expired {
            Status::Expired
        } else {
            Status::Ok
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_documented_ones() {
        let names: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "ok",
                "invalid",
                "expired",
                "used",
                "revoked",
                "wrong_code",
                "locked",
                "unbound"
            ]
        );
    }

    #[test]
    fn revoked_wins_over_used_and_expired() {
        assert_eq!(Status::of_unusable(true, true, true), Status::Revoked);
        assert_eq!(Status::of_unusable(false, true, true), Status::Used);
        assert_eq!(Status::of_unusable(false, false, true), Status::Expired);
        assert_eq!(Status::of_unusable(false, false, false), Status::Ok);
    }
}
