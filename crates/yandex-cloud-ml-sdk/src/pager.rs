//! Paging through `List` RPCs: one stream over every page, stopping when the server returns no
//! next-page token (or an empty page), so a caller never loops on the first page again.

use std::future::Future;

use futures_core::Stream;

use crate::error::Result;

/// The paging settings (`page_size`, `timeout`) and the `.await` (every item, collected) of a
/// listing type that has `page_size: i64`, `timeout: Duration` and a `stream()`.
macro_rules! listing {
    ($listing:ty, $item:ty) => {
        impl $listing {
            /// Items per page (the server's default when unset).
            pub fn page_size(mut self, size: u32) -> Self {
                self.page_size = i64::from(size);
                self
            }

            /// Timeout of each page's RPC (default 60 s).
            pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
                self.timeout = timeout;
                self
            }
        }

        impl std::future::IntoFuture for $listing {
            type Output = $crate::error::Result<Vec<$item>>;
            type IntoFuture = $crate::call::BoxFuture<'static, Vec<$item>>;

            fn into_future(self) -> Self::IntoFuture {
                use futures_util::TryStreamExt;
                Box::pin(self.stream().try_collect())
            }
        }
    };
}
pub(crate) use listing;

/// One page: its items and the token of the next one (empty at the end).
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub next: String,
}

/// A stream of every item of every page; `fetch` gets the page token ("" for the first page).
pub(crate) fn paged<T, F, Fut>(fetch: F) -> impl Stream<Item = Result<T>> + Send
where
    T: Send + 'static,
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Page<T>>> + Send,
{
    struct State<T, F> {
        fetch: F,
        token: Option<String>,
        buffered: std::vec::IntoIter<T>,
        seen: std::collections::HashSet<String>,
    }
    let state = State { fetch, token: Some(String::new()), buffered: Vec::new().into_iter(), seen: Default::default() };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(item) = state.buffered.next() {
                return Some((Ok(item), state));
            }
            let token = state.token.take()?;
            match (state.fetch)(token).await {
                Ok(page) => {
                    // An empty page or token ends the listing, and so does a token seen before
                    // (a server that would make the listing go round forever).
                    if !page.items.is_empty() && !page.next.is_empty() && state.seen.insert(page.next.clone()) {
                        state.token = Some(page.next);
                    }
                    state.buffered = page.items.into_iter();
                }
                Err(e) => return Some((Err(e), state)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn every_page_is_read_and_an_empty_token_ends_it() {
        let pages = |token: String| async move {
            Ok(match token.as_str() {
                "" => Page { items: vec![1, 2], next: "b".into() },
                "b" => Page { items: vec![3], next: "c".into() },
                "c" => Page { items: vec![4], next: String::new() },
                other => panic!("asked for page {other}"),
            })
        };
        let all: Vec<i32> = paged(pages).map(|r| r.unwrap()).collect().await;
        assert_eq!(all, [1, 2, 3, 4]);
        // A server that repeats a token with an empty page stops too.
        let stuck = |_token: String| async move { Ok(Page::<i32> { items: vec![], next: "again".into() }) };
        assert_eq!(paged(stuck).count().await, 0);
        // One that keeps handing out the same token with items stops after the repeat.
        let looping = |_token: String| async move { Ok(Page { items: vec![7], next: "same".into() }) };
        assert_eq!(paged(looping).count().await, 2);
    }
}
