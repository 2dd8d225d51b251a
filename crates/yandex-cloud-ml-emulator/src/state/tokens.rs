//! IAM tokens the emulator issued. Bounded: every token lives equally long, so issue order is
//! expiry order and the oldest token makes room in O(1). A token the emulator no longer knows
//! (revoked, evicted or from an earlier run) but that has its format is rejected, never taken
//! for a foreign credential.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

/// Prefix of every token the emulator issues.
const PREFIX: &str = "t1.emulator.";

/// What the emulator knows of a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid,
    Expired,
    /// Issued by an emulator but revoked or forgotten.
    Invalid,
    /// Not an emulator token: the auth mode decides.
    Foreign,
}

#[derive(Default)]
struct Issued {
    expiry: HashMap<String, SystemTime>,
    /// Tokens in issue order; may still hold revoked ones, never more than `max`.
    order: VecDeque<String>,
}

pub(crate) struct Tokens {
    issued: Mutex<Issued>,
    lifetime: Duration,
    max: usize,
}

impl Tokens {
    /// Tokens live `lifetime`, at most a century (a longer one, up to `u64::MAX` seconds, would
    /// overflow the clock and the protobuf timestamp).
    pub(crate) fn new(lifetime: Duration, max: usize) -> Tokens {
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        Tokens { issued: Mutex::default(), lifetime: lifetime.min(CENTURY), max: max.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, Issued> {
        self.issued.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn issue(&self) -> (String, SystemTime) {
        let token = format!("{PREFIX}{}", super::new_id("").repeat(2));
        let now = SystemTime::now();
        let expires = now + self.lifetime;
        let mut issued = self.lock();
        while issued.order.len() >= self.max
            || issued.order.front().is_some_and(|t| issued.expiry.get(t).is_none_or(|exp| *exp <= now))
        {
            let Some(oldest) = issued.order.pop_front() else { break };
            issued.expiry.remove(&oldest);
        }
        issued.order.push_back(token.clone());
        issued.expiry.insert(token.clone(), expires);
        (token, expires)
    }

    pub(crate) fn check(&self, token: &str) -> TokenCheck {
        match self.lock().expiry.get(token) {
            Some(exp) if SystemTime::now() < *exp => TokenCheck::Valid,
            Some(_) => TokenCheck::Expired,
            None if token.starts_with(PREFIX) => TokenCheck::Invalid,
            None => TokenCheck::Foreign,
        }
    }

    /// Makes every issued token expired.
    pub(crate) fn expire_all(&self) {
        let past = SystemTime::now() - Duration::from_secs(1);
        self.lock().expiry.values_mut().for_each(|exp| *exp = past);
    }

    pub(crate) fn revoke(&self, token: &str) -> bool {
        self.lock().expiry.remove(token).is_some()
    }

    pub(crate) fn clear(&self) {
        let mut issued = self.lock();
        issued.expiry.clear();
        issued.order.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().expiry.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_stays_bounded_and_keeps_the_newest() {
        let tokens = Tokens::new(Duration::from_secs(60), 100);
        let issued: Vec<String> = (0..1000).map(|_| tokens.issue().0).collect();
        assert_eq!(tokens.len(), 100);
        assert_eq!(tokens.check(issued.last().unwrap()), TokenCheck::Valid);
        assert_eq!(tokens.check(&issued[0]), TokenCheck::Invalid);
        assert_eq!(tokens.check("someone-elses-token"), TokenCheck::Foreign);
    }

    #[test]
    fn revoked_and_expired_tokens_stay_refused() {
        let tokens = Tokens::new(Duration::from_secs(60), 10);
        let (revoked, _) = tokens.issue();
        assert!(tokens.revoke(&revoked));
        assert_eq!(tokens.check(&revoked), TokenCheck::Invalid);
        let (old, _) = tokens.issue();
        tokens.expire_all();
        assert_eq!(tokens.check(&old), TokenCheck::Expired);
        // Issuing drops expired tokens; they are then refused as unknown emulator tokens.
        for _ in 0..20 {
            tokens.issue();
        }
        assert_eq!(tokens.check(&old), TokenCheck::Invalid);
    }

    #[test]
    fn revocations_do_not_let_the_order_grow() {
        let tokens = Tokens::new(Duration::from_secs(60), 10);
        for _ in 0..1000 {
            let (t, _) = tokens.issue();
            tokens.revoke(&t);
        }
        assert!(tokens.lock().order.len() <= 10);
    }
}
