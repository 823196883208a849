//! When a grant needs re-validation.

/// When a grant (a session's, an app password's) needs re-validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    No,
    /// After the response.
    Later,
    /// Before the response: too long since the issuer last vouched.
    Now,
}

/// The one rule: due once `every` has passed since the issuer last vouched (`validated`),
/// before the response once twice that has; never while a refresh runs or backs off here
/// (`busy`). `busy` is only asked for grants that are due: it may cost a hash.
pub fn due(every: u64, validated: u64, now: u64, busy: impl FnOnce() -> bool) -> Due {
    let age = now.saturating_sub(validated);
    if age < every || busy() {
        Due::No
    } else if age >= every.saturating_mul(2) {
        Due::Now
    } else {
        Due::Later
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_every_first_after_twice_never_while_busy() {
        assert_eq!(due(60, 1000, 1059, || false), Due::No);
        assert_eq!(due(60, 1000, 1060, || false), Due::Later);
        assert_eq!(due(60, 1000, 1119, || false), Due::Later);
        assert_eq!(due(60, 1000, 1120, || false), Due::Now);
        assert_eq!(due(60, 1000, 5000, || true), Due::No);
        assert_eq!(
            due(60, 1000, 1010, || panic!("not asked when not due")),
            Due::No
        );
    }
}
