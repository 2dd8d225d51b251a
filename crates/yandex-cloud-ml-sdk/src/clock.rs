//! Durations from users and servers can be anything up to `Duration::MAX`; adding one to an
//! `Instant` would panic. Every deadline is computed with a capped duration instead.

use std::time::Duration;

/// Longer than any call, wait or token lifetime can matter: a year.
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// `d`, at most a year, so `Instant::now() + capped(d)` cannot overflow.
pub(crate) fn capped(d: Duration) -> Duration {
    d.min(FOREVER)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_largest_duration_makes_a_deadline() {
        let deadline = std::time::Instant::now() + super::capped(std::time::Duration::MAX);
        assert!(deadline > std::time::Instant::now());
    }
}
