//! A cached IAM token that is refreshed before it expires, with one refresh in flight for
//! any number of concurrent callers.

use std::{
    future::Future,
    sync::RwLock,
    time::{Duration, Instant},
};

use tonic::metadata::AsciiMetadataValue;

use super::secret::Secret;
use crate::error::{Error, Result};

/// Lifetime assumed when the token source does not say (the Python SDK refreshes hourly).
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Refresh this long before expiry at most…
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(15 * 60);

/// A freshly issued IAM token.
pub(crate) struct IssuedToken {
    pub token: Secret,
    /// Remaining lifetime as reported by the issuer, if it reported one.
    pub expires_in: Option<Duration>,
}

#[derive(Clone)]
struct Cached {
    header: AsciiMetadataValue,
    refresh_at: Instant,
    expires_at: Instant,
}

#[derive(Default)]
pub(crate) struct TokenCache {
    current: RwLock<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
}

impl TokenCache {
    /// Returns a valid `Bearer` header, fetching a new token when none is cached or the cached
    /// one has expired. Between the refresh point and expiry one caller refreshes while the
    /// others keep using the still-valid token, so refreshes never stall traffic.
    pub(crate) async fn header<F, Fut>(&self, fetch: F) -> Result<AsciiMetadataValue>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<IssuedToken>>,
    {
        let now = Instant::now();
        if let Some(c) = self.snapshot() {
            if now < c.refresh_at {
                return Ok(c.header);
            }
            if now < c.expires_at {
                let Ok(_guard) = self.refresh.try_lock() else {
                    return Ok(c.header);
                };
                return match fetch().await {
                    Ok(issued) => self.store(issued),
                    Err(e) => {
                        tracing::warn!(error = %e, "IAM token refresh failed; using the current token until it expires");
                        Ok(c.header)
                    }
                };
            }
        }
        let _guard = self.refresh.lock().await;
        // Someone else may have refreshed while we waited for the lock.
        if let Some(c) = self.snapshot().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.header);
        }
        let issued = fetch().await?;
        self.store(issued)
    }

    /// Forgets the cached token after the server rejected `rejected`, unless another caller
    /// has already replaced it (so concurrent rejections cause one refresh, not many).
    pub(crate) fn invalidate(&self, rejected: &AsciiMetadataValue) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| c.header == *rejected) {
            *current = None;
        }
    }

    fn snapshot(&self) -> Option<Cached> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store(&self, issued: IssuedToken) -> Result<AsciiMetadataValue> {
        let header = bearer(&issued.token)?;
        let lifetime = crate::clock::capped(issued.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME));
        let margin = (lifetime / 2).min(MAX_REFRESH_MARGIN);
        let now = Instant::now();
        let cached =
            Cached { header: header.clone(), refresh_at: now + (lifetime - margin), expires_at: now + lifetime };
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(cached);
        Ok(header)
    }
}

/// `Bearer <token>` as a sensitive header value (never printed by `Debug`).
pub(crate) fn bearer(token: &Secret) -> Result<AsciiMetadataValue> {
    header_value("Bearer", token)
}

pub(crate) fn header_value(scheme: &str, token: &Secret) -> Result<AsciiMetadataValue> {
    if token.is_empty() {
        return Err(Error::auth(format!("empty {scheme} credential")));
    }
    // Header values may carry bytes above 0x7f, which servers drop or misread: refuse them.
    if !token.expose().bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::auth(format!(
            "the {scheme} credential contains non-ASCII, space or control characters; \
             check that it was copied whole and without extra characters"
        )));
    }
    let mut v = AsciiMetadataValue::try_from(format!("{scheme} {}", token.expose()))
        .map_err(|_| Error::auth(format!("{scheme} credential contains characters not allowed in a header")))?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    fn issued(n: usize, secs: u64) -> IssuedToken {
        IssuedToken { token: Secret::new(format!("t1.token-{n}")), expires_in: Some(Duration::from_secs(secs)) }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .header(|| async {
                        let n = fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(issued(n, 3600))
                    })
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().to_str().unwrap(), "Bearer t1.token-0");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn refreshes_after_half_of_a_short_lifetime_and_after_invalidate() {
        let cache = TokenCache::default();
        let h = cache.header(|| async { Ok(issued(1, 1)) }).await.unwrap();
        assert_eq!(h.to_str().unwrap(), "Bearer t1.token-1");
        // Still fresh: no fetch.
        let h = cache.header(|| async { panic!("must not fetch") }).await.unwrap();
        assert_eq!(h.to_str().unwrap(), "Bearer t1.token-1");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let h = cache.header(|| async { Ok(issued(2, 3600)) }).await.unwrap();
        assert_eq!(h.to_str().unwrap(), "Bearer t1.token-2");
        cache.invalidate(&bearer(&Secret::new("t1.token-1")).unwrap());
        let h = cache.header(|| async { panic!("a stale rejection must not drop the new token") }).await.unwrap();
        assert_eq!(h.to_str().unwrap(), "Bearer t1.token-2");
        cache.invalidate(&h);
        let h = cache.header(|| async { Ok(issued(3, 3600)) }).await.unwrap();
        assert_eq!(h.to_str().unwrap(), "Bearer t1.token-3");
    }

    #[tokio::test]
    async fn failed_refresh_keeps_the_valid_token_but_expired_one_errors() {
        let cache = TokenCache::default();
        cache.header(|| async { Ok(issued(1, 1)) }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let h = cache.header(|| async { Err(Error::auth("iam down")) }).await.unwrap();
        assert_eq!(h.to_str().unwrap(), "Bearer t1.token-1");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let e = cache.header(|| async { Err(Error::auth("iam down")) }).await.unwrap_err();
        assert!(e.is_auth());
    }

    #[test]
    fn header_values_are_sensitive() {
        let v = bearer(&Secret::new("abc")).unwrap();
        assert!(v.is_sensitive());
        assert!(!format!("{v:?}").contains("abc"));
    }
}
