//! IAM tokens the emulator issued. Bounded: expired tokens are dropped when new ones are
//! issued, and beyond the limit the token that expires first makes room.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

pub(crate) struct Tokens {
    issued: Mutex<HashMap<String, SystemTime>>,
    lifetime: Duration,
    max: usize,
}

impl Tokens {
    pub(crate) fn new(lifetime: Duration, max: usize) -> Tokens {
        Tokens { issued: Mutex::default(), lifetime, max: max.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, SystemTime>> {
        self.issued.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn issue(&self) -> (String, SystemTime) {
        let token = format!("t1.emulator.{}", super::new_id("").repeat(2));
        let now = SystemTime::now();
        let expires = now + self.lifetime;
        let mut issued = self.lock();
        if issued.len() >= self.max {
            issued.retain(|_, exp| *exp > now);
        }
        if issued.len() >= self.max
            && let Some(first) = issued.iter().min_by_key(|(_, exp)| **exp).map(|(t, _)| t.clone())
        {
            issued.remove(&first);
        }
        issued.insert(token.clone(), expires);
        (token, expires)
    }

    /// `Some(true)` for an unexpired issued token, `Some(false)` for an expired one, `None` if
    /// the emulator does not know it.
    pub(crate) fn valid(&self, token: &str) -> Option<bool> {
        self.lock().get(token).map(|exp| SystemTime::now() < *exp)
    }

    /// Makes every issued token expired.
    pub(crate) fn expire_all(&self) {
        let past = SystemTime::now() - Duration::from_secs(1);
        self.lock().values_mut().for_each(|exp| *exp = past);
    }

    pub(crate) fn revoke(&self, token: &str) -> bool {
        self.lock().remove(token).is_some()
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
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
        assert_eq!(tokens.valid(issued.last().unwrap()), Some(true));
        assert_eq!(tokens.valid(&issued[0]), None);
    }
}
